package history

import (
	"math/bits"
	"unicode/utf8"
)

// The fast path reads a line in the exact shape a Recorder writes it,
//
//	{"index":I,"time":T,"process":P,"type":"S","f":"S","value":V[,"node":"S"][,"error":"S"]}
//
// with V {"name":"S"[,"n":U][,"from":U][,"to":U][,"buffer":B]} for a
// client's next-range, {"name":"S"[,"id":U]} for a client's next-id, and
// any JSON for anything else, and no whitespace, escapes or number
// encodings beyond the plainest. It gives up on anything else, and the
// line goes to encoding/json, so it need not know the format's corners: it
// must only never accept a line encoding/json would read differently. The
// differential tests (FuzzReadFastPath, TestReadFastPathNeighbours) hold
// it to that.
//
// A client's value is decoded on the way, which validate would otherwise
// do with encoding/json a second time.

// The most decimal digits an int64 and an int parsed here may have, so
// that no overflow check is needed; longer numbers take the slow path.
const (
	maxInt64Digits = 18
	maxIntDigits   = 9 + 9*(bits.UintSize/64)
)

// fastReader holds what the fast path keeps between lines.
type fastReader struct {
	// strs interns names, nodes and error texts: a history repeats a
	// handful of each a million times.
	strs map[string]string
	// recent are interned strings by a hash of their length and last
	// byte: a comparison finds most of a line's strings, without hashing
	// them for strs.
	recent [16]string
	// arena holds the events' values, to allocate them by the page of
	// page bytes.
	arena []byte
	page  int
	// borrow leaves values in the line they were read from, good until
	// the next read, for a Scanner's caller that keeps none of them.
	borrow bool
}

const (
	maxInterned    = 4096
	maxInternedLen = 64
)

func (fr *fastReader) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	slot := &fr.recent[(len(b)+3*int(b[len(b)-1]))%len(fr.recent)]
	if *slot == string(b) { // no allocation for the comparison
		return *slot
	}
	if s, ok := fr.strs[string(b)]; ok { // nor for the lookup
		*slot = s
		return s
	}
	s := string(b)
	if len(b) <= maxInternedLen && len(fr.strs) < maxInterned {
		if fr.strs == nil {
			fr.strs = map[string]string{}
		}
		fr.strs[s] = s
		*slot = s
	}
	return s
}

// keep copies a value into the arena, capped so that appending to it
// cannot write over its neighbour.
func (fr *fastReader) keep(b []byte) []byte {
	if len(b) > cap(fr.arena)-len(fr.arena) {
		fr.arena = make([]byte, 0, max(fr.page, len(b)))
	}
	start := len(fr.arena)
	fr.arena = append(fr.arena, b...)
	return fr.arena[start:len(fr.arena):len(fr.arena)]
}

// parse fills e from a line in the Recorder's shape, and reports whether
// it could; e is untouched when it could not.
func (fr *fastReader) parse(b []byte, e *Event) bool {
	var out Event
	i, ok := lit(b, 0, `{"index":`)
	if !ok {
		return false
	}
	if out.Index, i, ok = integer(b, i, maxInt64Digits); !ok {
		return false
	}
	if i, ok = lit(b, i, `,"time":`); !ok {
		return false
	}
	if out.Time, i, ok = integer(b, i, maxInt64Digits); !ok {
		return false
	}
	if i, ok = lit(b, i, `,"process":`); !ok {
		return false
	}
	if j, ok := lit(b, i, `"nemesis"`); ok {
		out.Nemesis, i = true, j
	} else {
		var p int64
		if p, i, ok = integer(b, i, maxIntDigits); !ok {
			return false
		}
		out.Process = int(p)
	}
	if i, ok = lit(b, i, `,"type":`); !ok {
		return false
	}
	var s []byte
	if s, i, ok = str(b, i); !ok {
		return false
	}
	switch string(s) {
	case Invoke:
		out.Type = Invoke
	case Ok:
		out.Type = Ok
	case Fail:
		out.Type = Fail
	case Info:
		out.Type = Info
	default:
		out.Type = string(s)
	}
	if i, ok = lit(b, i, `,"f":`); !ok {
		return false
	}
	if s, i, ok = str(b, i); !ok {
		return false
	}
	switch string(s) {
	case NextRange:
		out.F = NextRange
	case NextID:
		out.F = NextID
	default:
		out.F = fr.str(s)
	}
	if i, ok = lit(b, i, `,"value":`); !ok {
		return false
	}
	start := i
	switch {
	case !out.Nemesis && out.F == NextRange:
		out.rng, i, ok = fr.rangeValue(b, i)
		out.decoded = true
	case !out.Nemesis && out.F == NextID:
		out.id, i, ok = fr.idValue(b, i)
		out.decoded = true
	default:
		i, ok = skipValue(b, i, 0)
	}
	if !ok {
		return false
	}
	if v := b[start:i]; string(v) != "null" {
		if fr.borrow {
			out.Value = v[:len(v):len(v)]
		} else {
			out.Value = fr.keep(v)
		}
	}
	if j, ok := lit(b, i, `,"node":`); ok {
		if s, i, ok = str(b, j); !ok {
			return false
		}
		out.Node = fr.str(s)
	}
	if j, ok := lit(b, i, `,"error":`); ok {
		if s, i, ok = str(b, j); !ok {
			return false
		}
		out.Error = fr.str(s)
	}
	if i != len(b)-1 || b[i] != '}' {
		return false
	}
	*e = out
	return true
}

// rangeValue reads {"name":"S"[,"n":U][,"from":U][,"to":U][,"buffer":B]}.
func (fr *fastReader) rangeValue(b []byte, i int) (RangeValue, int, bool) {
	var v RangeValue
	i, ok := lit(b, i, `{"name":`)
	if !ok {
		return v, i, false
	}
	var s []byte
	if s, i, ok = str(b, i); !ok {
		return v, i, false
	}
	v.Name = fr.str(s)
	if v.N, i, ok = optUnsigned(b, i, `,"n":`); !ok {
		return v, i, false
	}
	if v.From, i, ok = optUnsigned(b, i, `,"from":`); !ok {
		return v, i, false
	}
	if v.To, i, ok = optUnsigned(b, i, `,"to":`); !ok {
		return v, i, false
	}
	if j, ok := lit(b, i, `,"buffer":`); ok {
		if i, ok = lit(b, j, "true"); ok {
			v.Buffer = true
		} else if i, ok = lit(b, j, "false"); !ok {
			return v, i, false
		}
	}
	i, ok = lit(b, i, "}")
	return v, i, ok
}

// idValue reads {"name":"S"[,"id":U]}.
func (fr *fastReader) idValue(b []byte, i int) (IDValue, int, bool) {
	var v IDValue
	i, ok := lit(b, i, `{"name":`)
	if !ok {
		return v, i, false
	}
	var s []byte
	if s, i, ok = str(b, i); !ok {
		return v, i, false
	}
	v.Name = fr.str(s)
	if v.ID, i, ok = optUnsigned(b, i, `,"id":`); !ok {
		return v, i, false
	}
	i, ok = lit(b, i, "}")
	return v, i, ok
}

// lit matches s at b[i:].
func lit(b []byte, i int, s string) (int, bool) {
	if len(b)-i < len(s) || string(b[i:i+len(s)]) != s {
		return i, false
	}
	return i + len(s), true
}

// optUnsigned reads key and a uint64, or nothing: 0 when key is not there.
func optUnsigned(b []byte, i int, key string) (uint64, int, bool) {
	j, ok := lit(b, i, key)
	if !ok {
		return 0, i, true
	}
	return unsigned(b, j)
}

// integer reads a non-negative integer of at most maxDigits digits,
// without leading zeros.
func integer(b []byte, i, maxDigits int) (int64, int, bool) {
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	d := i - start
	if d == 0 || d > maxDigits || d > 1 && b[start] == '0' {
		return 0, i, false
	}
	return n, i, true
}

// unsigned reads a uint64 of at most 19 digits, without leading zeros.
func unsigned(b []byte, i int) (uint64, int, bool) {
	start := i
	var n uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	d := i - start
	if d == 0 || d > 19 || d > 1 && b[start] == '0' {
		return 0, i, false
	}
	return n, i, true
}

// str reads a string with no escape, no control character and valid
// UTF-8: one whose bytes are its value.
func str(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	i++
	start, ascii := i, true
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			s := b[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, i, false
			}
			return s, i + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, i, false
}

// maxDepth bounds the nesting skipValue follows, far below
// encoding/json's own limit.
const maxDepth = 32

// skipValue steps over a JSON value kept raw: any value, but with strings
// free of escapes and without whitespace. Since the value is kept as it
// is, its strings need not be valid UTF-8 (encoding/json takes them too).
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		i++
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skipString(b, i); !ok {
				return i, false
			}
			if i, ok = lit(b, i, ":"); !ok {
				return i, false
			}
			if i, ok = skipValue(b, i, depth+1); !ok {
				return i, false
			}
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i++
			case '}':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '[':
		i++
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skipValue(b, i, depth+1); !ok {
				return i, false
			}
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '"':
		return skipString(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	case c == 't':
		return lit(b, i, "true")
	case c == 'f':
		return lit(b, i, "false")
	case c == 'n':
		return lit(b, i, "null")
	}
	return i, false
}

func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\' || c < 0x20:
			return i, false
		}
	}
	return i, false
}

// skipNumber steps over -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, false
	}
	if b[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	if i < len(b) && b[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}
