package supervisor

import (
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Placeholders are the names a command template may use, each in braces.
var Placeholders = []string{"listen", "peer_listen", "peers", "name", "index", "n", "data_dir"}

// Vars are what the lab assigns a node, for its command template.
type Vars struct {
	Listen     string // {listen}: the client API's address, host:port
	PeerListen string // {peer_listen}: the peer API's address
	Peers      string // {peers}: every node's peer address, comma-separated, in order
	Name       string // {name}: n1, n2, ...
	Index      int    // {index}: the node's place in Peers, from 0
	N          int    // {n}: how many nodes
	DataDir    string // {data_dir}: the node's data directory
}

func (v Vars) lookup(name string) string {
	switch name {
	case "listen":
		return v.Listen
	case "peer_listen":
		return v.PeerListen
	case "peers":
		return v.Peers
	case "name":
		return v.Name
	case "index":
		return strconv.Itoa(v.Index)
	case "n":
		return strconv.Itoa(v.N)
	case "data_dir":
		return v.DataDir
	}
	return ""
}

// Template is a node's command line with placeholders: words split as a
// shell splits them (blanks, 'single' and "double" quotes, backslash
// escapes), but run without a shell. Placeholders are filled in inside
// quotes too; {{ and }} are literal braces.
type Template struct {
	words [][]part
}

// part is literal text or a placeholder.
type part struct {
	text string
	ph   bool
}

// ParseTemplate parses a command template, "rrseq-node --listen {listen}
// --peers {peers}" say. An unknown placeholder, an unclosed quote or
// brace, or an empty command is an error.
func ParseTemplate(s string) (Template, error) {
	var t Template
	var word []part
	var lit strings.Builder
	inWord := false
	flush := func() {
		if lit.Len() > 0 {
			word = append(word, part{text: lit.String()})
			lit.Reset()
		}
	}
	endWord := func() {
		flush()
		if inWord {
			t.words = append(t.words, word)
		}
		word, inWord = nil, false
	}
	rs := []rune(s)
	quote := rune(0)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r == '\'':
			quote = 0
			continue
		case quote == '\'' && r != '{' && r != '}':
			lit.WriteRune(r)
			continue
		case r == '\\' && quote == 0 || r == '\\' && quote == '"' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
			if i+1 == len(rs) {
				return Template{}, errors.Errorf("supervisor: template %q ends in a backslash", s)
			}
			i++
			lit.WriteRune(rs[i])
			inWord = true
			continue
		case quote == 0 && (r == ' ' || r == '\t' || r == '\n'):
			endWord()
			continue
		case quote == 0 && (r == '\'' || r == '"'):
			quote, inWord = r, true
			continue
		case quote == '"' && r == '"':
			quote = 0
			continue
		}
		inWord = true
		switch {
		case r == '{' && i+1 < len(rs) && rs[i+1] == '{':
			lit.WriteRune('{')
			i++
		case r == '}' && i+1 < len(rs) && rs[i+1] == '}':
			lit.WriteRune('}')
			i++
		case r == '{':
			end := i + 1
			for end < len(rs) && rs[end] != '}' {
				end++
			}
			if end == len(rs) {
				return Template{}, errors.Errorf("supervisor: template %q: unclosed {", s)
			}
			name := string(rs[i+1 : end])
			if !known(name) {
				return Template{}, errors.Errorf("supervisor: template %q: unknown placeholder {%s} (known: {%s})", s, name, strings.Join(Placeholders, "} {"))
			}
			flush()
			word = append(word, part{text: name, ph: true})
			i = end
		case r == '}':
			return Template{}, errors.Errorf("supervisor: template %q: a } without its { (write }} for a brace)", s)
		default:
			lit.WriteRune(r)
		}
	}
	if quote != 0 {
		return Template{}, errors.Errorf("supervisor: template %q: unclosed %c", s, quote)
	}
	endWord()
	if len(t.words) == 0 {
		return Template{}, errors.New("supervisor: empty command template")
	}
	return t, nil
}

func known(name string) bool {
	for _, p := range Placeholders {
		if p == name {
			return true
		}
	}
	return false
}

// Uses reports whether the template names a placeholder.
func (t Template) Uses(name string) bool {
	for _, w := range t.words {
		for _, p := range w {
			if p.ph && p.text == name {
				return true
			}
		}
	}
	return false
}

// Expand fills the placeholders in: the command and its arguments.
func (t Template) Expand(v Vars) []string {
	out := make([]string, len(t.words))
	for i, w := range t.words {
		var b strings.Builder
		for _, p := range w {
			if p.ph {
				b.WriteString(v.lookup(p.text))
			} else {
				b.WriteString(p.text)
			}
		}
		out[i] = b.String()
	}
	return out
}
