package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// Event types.
const (
	Invoke = "invoke"
	Ok     = "ok"
	Fail   = "fail"
	Info   = "info"
)

// Operation names of client processes.
const (
	NextRange = "next-range"
	NextID    = "next-id"
)

// NemesisProcess is the process of fault events.
const NemesisProcess = "nemesis"

// RangeValue is the value of a next-range operation: [From, To) on ok.
type RangeValue struct {
	Name string `json:"name"`
	N    uint64 `json:"n"`
	From uint64 `json:"from,omitempty"`
	To   uint64 `json:"to,omitempty"`
	// Buffer marks a range a client library fetched into its buffer, to
	// hand out one ID at a time as next-id operations; a range without it
	// was handed out whole.
	Buffer bool `json:"buffer,omitempty"`
}

// IDValue is the value of a next-id operation: ID on ok.
type IDValue struct {
	Name string `json:"name"`
	ID   uint64 `json:"id,omitempty"`
}

// Event is one line of a history.
type Event struct {
	Index   int64
	Time    int64 // ns since the run began
	Process int   // client process; meaningless when Nemesis
	Nemesis bool
	Type    string
	F       string
	Value   json.RawMessage
	Node    string
	Error   string
	// Extra keeps fields this package does not know, to write them back.
	Extra map[string]json.RawMessage

	// decoded value, filled by Read's validation
	rng     RangeValue
	id      IDValue
	decoded bool
}

// known are the fields Event has names for.
var known = map[string]bool{"index": true, "time": true, "process": true, "type": true, "f": true, "value": true, "node": true, "error": true}

// MarshalJSON writes the line format, in the Recorder's field order.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.appendJSON(nil)
}

// appendJSON writes the event as a Recorder would (its fields in the same
// order, so that Read's fast path takes the line back), then the unknown
// fields sorted by name.
func (e Event) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, e.Index, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, e.Time, 10)
	b = append(b, `,"process":`...)
	if e.Nemesis {
		b = append(b, `"nemesis"`...)
	} else {
		b = strconv.AppendInt(b, int64(e.Process), 10)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"f":`...)
	b = appendJSONString(b, e.F)
	var err error
	if len(e.Value) > 0 {
		b = append(b, `,"value":`...)
		if b, err = appendCompact(b, e.Value); err != nil {
			return nil, errors.Wrap(err, "value")
		}
	}
	if e.Node != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, e.Node)
	}
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, e.Error)
	}
	keys := make([]string, 0, len(e.Extra))
	for k := range e.Extra {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = append(b, ',')
		b = appendJSONString(b, k)
		b = append(b, ':')
		if b, err = appendCompact(b, e.Extra[k]); err != nil {
			return nil, errors.Wrapf(err, "field %q", k)
		}
	}
	return append(b, '}'), nil
}

// appendCompact appends raw JSON without its whitespace; nil is null.
func appendCompact(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return b, err
	}
	return buf.Bytes(), nil
}

// line is the shape of a line, for decoding.
type line struct {
	Index   *int64          `json:"index"`
	Time    *int64          `json:"time"`
	Process json.RawMessage `json:"process"`
	Type    *string         `json:"type"`
	F       *string         `json:"f"`
	Value   json.RawMessage `json:"value"`
	Node    string          `json:"node"`
	Error   string          `json:"error"`
}

// UnmarshalJSON reads the line format and checks each field's type.
func (e *Event) UnmarshalJSON(b []byte) error {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errors.Errorf("field %q: %s is not a %s", te.Field, te.Value, te.Type)
		}
		return err
	}
	var out Event
	switch {
	case l.Index == nil:
		return errors.New(`missing "index"`)
	case l.Time == nil:
		return errors.New(`missing "time"`)
	case l.Type == nil:
		return errors.New(`missing "type"`)
	case l.F == nil:
		return errors.New(`missing "f"`)
	case l.Process == nil:
		return errors.New(`missing "process"`)
	}
	out.Index, out.Time, out.Type, out.F, out.Node, out.Error = *l.Index, *l.Time, *l.Type, *l.F, l.Node, l.Error
	if len(l.Process) > 0 && l.Process[0] == '"' {
		var s string
		if err := json.Unmarshal(l.Process, &s); err != nil || s != NemesisProcess {
			return errors.Errorf(`field "process": %s is neither an integer nor "nemesis"`, clip(l.Process))
		}
		out.Nemesis = true
	} else if err := json.Unmarshal(l.Process, &out.Process); err != nil || out.Process < 0 {
		return errors.Errorf(`field "process": %s is neither a non-negative integer nor "nemesis"`, clip(l.Process))
	}
	if len(l.Value) > 0 && !bytes.Equal(l.Value, []byte("null")) {
		out.Value = append(json.RawMessage(nil), l.Value...)
	}
	// Keep unknown fields: only lines with more members than known
	// fields present pay for a second decoding.
	present := 5
	if l.Value != nil {
		present++
	}
	if l.Node != "" {
		present++
	}
	if l.Error != "" {
		present++
	}
	if members(b) > present {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err == nil {
			for k, v := range m {
				if !known[k] {
					if out.Extra == nil {
						out.Extra = map[string]json.RawMessage{}
					}
					out.Extra[k] = v
				}
			}
		}
	}
	*e = out
	return nil
}

// members counts the members of a JSON object without decoding it: the
// commas at depth one, outside strings, plus one.
func members(b []byte) int {
	n, depth, inStr, esc, empty := 0, 0, false, false, true
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			continue
		case c == '}' || c == ']':
			depth--
			continue
		case c == ',' && depth == 1:
			n++
		}
		if depth == 1 && c > ' ' {
			empty = false
		}
	}
	if empty {
		return 0
	}
	return n + 1
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Range decodes the value of a next-range event.
func (e Event) Range() (RangeValue, error) { return e.rangeValue() }

// ID decodes the value of a next-id event.
func (e Event) ID() (IDValue, error) { return e.idValue() }

// rangeValue is Range without a copy of the event, for validate, which
// runs on every line.
func (e *Event) rangeValue() (RangeValue, error) {
	if e.decoded {
		return e.rng, nil
	}
	var v RangeValue
	if err := strictDecode(e.Value, &v); err != nil {
		return v, errors.Wrap(err, "next-range value")
	}
	return v, nil
}

// idValue is ID without a copy of the event.
func (e *Event) idValue() (IDValue, error) {
	if e.decoded {
		return e.id, nil
	}
	var v IDValue
	if err := strictDecode(e.Value, &v); err != nil {
		return v, errors.Wrap(err, "next-id value")
	}
	return v, nil
}

func strictDecode(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("missing")
	}
	return json.Unmarshal(raw, v)
}

// validate checks one event against the format's rules that need no
// other line.
func (e *Event) validate() error {
	switch e.Type {
	case Invoke, Ok, Fail, Info:
	default:
		return errors.Errorf("type %q is not invoke, ok, fail or info", e.Type)
	}
	if e.F == "" {
		return errors.New(`empty "f"`)
	}
	if e.Index < 0 {
		return errors.Errorf("negative index %d", e.Index)
	}
	if e.Time < 0 {
		return errors.Errorf("negative time %d", e.Time)
	}
	if e.Nemesis {
		return nil
	}
	switch e.F {
	case NextRange:
		v, err := e.rangeValue()
		if err != nil {
			return err
		}
		if v.Name == "" {
			return errors.New("next-range value has no name")
		}
		if v.N == 0 {
			return errors.New("next-range value has n = 0")
		}
		if e.Type == Ok {
			if v.To < v.From || v.To-v.From != v.N {
				return errors.Errorf("next-range ok [%d, %d) does not hold n = %d IDs", v.From, v.To, v.N)
			}
			if v.From == 0 {
				return errors.New("next-range ok starts at ID 0; IDs start at 1")
			}
		}
		e.rng, e.decoded = v, true
	case NextID:
		v, err := e.idValue()
		if err != nil {
			return err
		}
		if v.Name == "" {
			return errors.New("next-id value has no name")
		}
		if e.Type == Ok && v.ID == 0 {
			return errors.New("next-id ok has no id")
		}
		e.id, e.decoded = v, true
	default:
		return errors.Errorf("client operation %q is not next-range or next-id", e.F)
	}
	return nil
}

// LineError is one line that could not be used.
type LineError struct {
	Line int    `json:"line"` // from 1
	Msg  string `json:"msg"`
}

func (l LineError) String() string { return fmt.Sprintf("line %d: %s", l.Line, l.Msg) }

// MaxLine is the longest line Read accepts.
const MaxLine = 1 << 20

// Read parses a history. Each malformed line is skipped and reported with
// its number; so is a line that breaks the history's rules (an index that
// does not follow the last one, time going back, a completion without an
// invoke, an invoke while the process is busy or after its info). A last
// line cut short (a run that died mid-write) is reported as truncated.
// The error is for I/O only.
//
// Indices must increase but may skip: a line lost to corruption is
// reported once, and the lines after it, numbered by their place in the
// file, still count.
//
// Read holds the whole history; a Scanner gives the same events one at a
// time, to a reader that keeps only what it needs of them.
func Read(r io.Reader) ([]Event, []LineError, error) {
	return read(r, true)
}

// read is Read, with the fast path for the Recorder's lines on or off:
// the tests hold the two to the same answers.
func read(r io.Reader, fast bool) ([]Event, []LineError, error) {
	s := newScanner(r, fast, true)
	var events []Event
	if s.size > 0 {
		// Make room for the events up front when the size is known: a
		// million events are too many to grow into.
		events = make([]Event, 0, min(s.size/bytesPerEvent+16, 1<<21))
	}
	for s.Scan() {
		events = append(events, s.e)
	}
	return events, s.problems, s.err
}

// Scanner reads a history one event at a time, by Read's rules and with
// Read's problems, for a reader that keeps only what it needs of each
// event: checking ten million events need not hold ten million Events.
//
//	s := history.NewScanner(r)
//	for s.Scan() {
//		e := s.Event()
//		...
//	}
//	problems, err := s.Problems(), s.Err()
type Scanner struct {
	br   *bufio.Reader
	fr   fastReader
	fast bool
	size int64 // of the input, when known; 0 when not
	line int   // the last line read, from 1
	done bool
	e    Event

	problems []LineError
	err      error
	rules    rules
}

// pending is what the process rules need of an invoke.
type pending struct {
	index int64
	f     string
	name  string
	n     uint64
}

// NewScanner reads a history from r.
func NewScanner(r io.Reader) *Scanner { return newScanner(r, true, false) }

// newScanner is NewScanner with the fast path on or off, and with the
// events' values kept (for Read, which holds them all) or good only
// until the next Scan.
func newScanner(r io.Reader, fast, keep bool) *Scanner {
	var size int64
	switch r := r.(type) {
	case interface{ Len() int }: // bytes.Buffer, bytes.Reader, strings.Reader
		size = int64(r.Len())
	case *os.File:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	// A small history, like each of a seed sweep's thousands, gets
	// buffers its size: the lines still fit, without copies.
	bufSize := 64 << 10
	if size > 0 && size < int64(bufSize) {
		bufSize = int(size) + 1
	}
	return &Scanner{
		br:    bufio.NewReaderSize(r, bufSize),
		fr:    fastReader{page: bufSize, borrow: !keep},
		fast:  fast,
		size:  size,
		rules: newRules(),
	}
}

// Scan reads up to the next usable event, noting each line it skips in
// Problems; false at the end of the input or on an I/O error (see Err).
func (s *Scanner) Scan() bool {
	for !s.done {
		s.line++
		line := s.line
		b, err := readLine(s.br)
		if err == io.EOF {
			s.done = true
			break
		}
		switch {
		case errors.Is(err, errTooLong):
			s.problem(line, fmt.Sprintf("longer than %d bytes", MaxLine))
			continue
		case err == io.ErrUnexpectedEOF:
			s.done = true // no newline at the end: the last line
		case err != nil:
			s.done, s.err = true, errors.Wrap(err, "read history")
			return false
		}
		last := s.done
		if len(bytes.TrimSpace(b)) == 0 {
			if !last {
				s.problem(line, "empty line")
			}
			continue
		}
		// The event is read in place: it is a few hundred bytes, and a
		// history has millions.
		e := &s.e
		// A line as the Recorder writes it is read by hand; any other
		// goes through encoding/json, which says what is wrong with it.
		// Either sets the whole event when it takes the line.
		var perr error
		if !s.fast || !s.fr.parse(b, e) {
			*e = Event{}
			perr = e.UnmarshalJSON(b)
		}
		if perr != nil {
			msg := perr.Error()
			var se *json.SyntaxError
			if errors.As(perr, &se) {
				msg = "not valid JSON: " + msg
			}
			if last {
				msg = Truncated + " (the run may have died while writing it): " + msg
			}
			s.problem(line, msg)
			continue
		}
		if msg := s.rules.check(e); msg != "" {
			s.problem(line, msg)
			continue
		}
		return true
	}
	return false
}

// rules holds events to the format's rules, one after another: each
// event's own, the order of indices and times, and the processes' (see
// checkProcess).
type rules struct {
	lastTime  int64
	lastIndex int64
	procs     processes
}

func newRules() rules { return rules{lastIndex: -1, procs: newProcesses()} }

// check says what rule e breaks, "" for none; e then counts as the last
// event, and its value is decoded.
func (r *rules) check(e *Event) string {
	if err := e.validate(); err != nil {
		return err.Error()
	}
	if e.Index <= r.lastIndex {
		return fmt.Sprintf("index %d does not follow %d (events must be numbered in order)", e.Index, r.lastIndex)
	}
	if e.Time < r.lastTime {
		return fmt.Sprintf("time %d goes back from %d", e.Time, r.lastTime)
	}
	if !e.Nemesis {
		if msg := checkProcess(e, &r.procs); msg != "" {
			return msg
		}
	}
	r.lastTime, r.lastIndex = e.Time, e.Index
	return ""
}

func (s *Scanner) problem(line int, msg string) {
	s.problems = append(s.problems, LineError{line, msg})
}

// Event is the event the last Scan read. Its Value may share memory with
// the Scanner's buffer, and is good only until the next Scan: a caller
// that keeps it keeps a copy (bytes.Clone).
func (s *Scanner) Event() Event { return s.e }

// Line is the line number of the event the last Scan read, from 1.
func (s *Scanner) Line() int { return s.line }

// Problems are the lines skipped so far.
func (s *Scanner) Problems() []LineError { return s.problems }

// Err is the I/O error that stopped the Scanner, if any.
func (s *Scanner) Err() error { return s.err }

// processes are the process rules' state: in a slice for the low
// process numbers a history mostly has, where a lookup is cheaper than a
// map's, and in maps beyond, for the many a long history with many infos
// numbers.
type processes struct {
	low      []process // by process, below lowProcesses
	inflight map[int]pending
	retired  map[int]bool
}

// lowProcesses bounds the processes kept in processes.low.
const lowProcesses = 1024

type process struct {
	inv     pending
	busy    bool
	retired bool
}

func newProcesses() processes {
	return processes{inflight: map[int]pending{}, retired: map[int]bool{}}
}

// at is the state of a low process p, nil for a high one.
func (ps *processes) at(p int) *process {
	if uint(p) >= lowProcesses {
		return nil
	}
	if p >= len(ps.low) {
		ps.low = append(ps.low, make([]process, p+1-len(ps.low))...)
	}
	return &ps.low[p]
}

func (ps *processes) get(p int) (inv pending, busy, retired bool) {
	if s := ps.at(p); s != nil {
		return s.inv, s.busy, s.retired
	}
	inv, busy = ps.inflight[p]
	return inv, busy, ps.retired[p]
}

func (ps *processes) invoke(p int, inv pending) {
	if s := ps.at(p); s != nil {
		s.inv, s.busy = inv, true
		return
	}
	ps.inflight[p] = inv
}

func (ps *processes) complete(p int, retire bool) {
	if s := ps.at(p); s != nil {
		s.inv, s.busy = pending{}, false
		s.retired = s.retired || retire
		return
	}
	delete(ps.inflight, p)
	if retire {
		ps.retired[p] = true
	}
}

// checkProcess applies the one-operation-at-a-time rule and updates the
// process's state.
func checkProcess(e *Event, ps *processes) string {
	p := e.Process
	inv, busy, retired := ps.get(p)
	if e.Type == Invoke {
		switch {
		case retired:
			return fmt.Sprintf("process %d invokes after an info: it must never invoke again", p)
		case busy:
			return fmt.Sprintf("process %d invokes while its operation at index %d is in flight", p, inv.index)
		}
		ps.invoke(p, pendingOf(e))
		return ""
	}
	switch {
	case !busy:
		return fmt.Sprintf("process %d completes (%s) with no operation in flight", p, e.Type)
	case inv.f != e.F:
		return fmt.Sprintf("process %d completes %s but invoked %s at index %d", p, e.F, inv.f, inv.index)
	}
	// Hold a completion to its invoke's sequence and size.
	if done := pendingOf(e); done.name != inv.name || done.n != inv.n {
		return fmt.Sprintf("completion of process %d does not match its invoke at index %d (name %q n %d vs name %q n %d)",
			p, inv.index, done.name, done.n, inv.name, inv.n)
	}
	ps.complete(p, e.Type == Info)
	return ""
}

// pendingOf is what the process rules keep of a client event, which has
// been validated, so its value is decoded.
func pendingOf(e *Event) pending {
	if e.F == NextID {
		return pending{index: e.Index, f: e.F, name: e.id.Name}
	}
	return pending{index: e.Index, f: e.F, name: e.rng.Name, n: e.rng.N}
}

var errTooLong = errors.New("line too long")

// Truncated starts the message of a last line cut short.
const Truncated = "truncated last line"

// readLine returns the next line without its newline; io.ErrUnexpectedEOF
// with the bytes of a last line that has no newline. A line that fits in
// br's buffer is returned in place, without a copy: it is good only until
// the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	chunk, err := br.ReadSlice('\n')
	switch {
	case err == nil:
		return chunk[:len(chunk)-1], nil
	case err == io.EOF && len(chunk) > 0:
		return chunk, io.ErrUnexpectedEOF
	case err == io.EOF:
		return nil, io.EOF
	case err != bufio.ErrBufferFull:
		return nil, err
	}
	buf := append([]byte(nil), chunk...)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLine+1 {
			// Skip the rest of the line.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, errTooLong
		}
		buf = append(buf, chunk...)
		switch err {
		case nil:
			return buf[:len(buf)-1], nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return buf, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// ReadFile reads the history at path.
func ReadFile(path string) ([]Event, []LineError, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, errors.Wrap(err, "open history")
	}
	defer f.Close()
	return Read(f)
}

// bytesPerEvent is about the length of a short line a Recorder writes: a
// file's size over it is about its number of events, or a little more.
const bytesPerEvent = 100

// Write writes events as a history, one line each.
func Write(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	var b []byte
	for _, e := range events {
		var err error
		if b, err = e.appendJSON(b[:0]); err != nil {
			return errors.Wrapf(err, "encode event %d", e.Index)
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return errors.Wrap(err, "write history")
		}
	}
	return errors.Wrap(bw.Flush(), "write history")
}

// Recorder writes a history as it happens. It is safe for concurrent use;
// each event is written, whole, before its method returns.
type Recorder struct {
	mu   sync.Mutex
	w    io.Writer
	now  func() time.Duration
	next int64
	last int64
	buf  []byte
	err  error
	// slow encodes everything with encoding/json, for the tests to
	// compare the fast encoding with.
	slow bool
	// sink, when set, takes each event as a value instead of w a line;
	// ev is the event handed to it, and rules holds events to the
	// format's rules as a Scanner would the lines.
	sink  func(*Event)
	ev    Event
	rules rules
}

// NewRecorder writes to w, stamping events with now.
func NewRecorder(w io.Writer, now func() time.Duration) *Recorder {
	return &Recorder{w: w, now: now}
}

// NewEventRecorder is a Recorder that writes nothing: it hands each event
// to add as the Scanner would have read its line, its value decoded (a
// client operation's event has it in Range or ID, and no Value), so that
// checks can take a history as it is made without encoding and parsing
// it. The event is good only until add returns. One that breaks the
// format's rules, which a Scanner would skip as a problem, goes to no
// one: the first such is Err.
func NewEventRecorder(add func(*Event), now func() time.Duration) *Recorder {
	return &Recorder{sink: add, now: now, rules: newRules()}
}

// Invoke records the start of an operation and returns its index.
func (r *Recorder) Invoke(proc int, f string, v any) int64 {
	return r.add(proc, false, Invoke, f, v, "", "")
}

// Ok records that the process's operation happened, with result v.
func (r *Recorder) Ok(proc int, f string, v any, node, errText string) {
	r.add(proc, false, Ok, f, v, node, errText)
}

// Fail records that the process's operation certainly did not happen.
func (r *Recorder) Fail(proc int, f string, v any, node, errText string) {
	r.add(proc, false, Fail, f, v, node, errText)
}

// Info records that the outcome of the process's operation is unknown.
func (r *Recorder) Info(proc int, f string, v any, node, errText string) {
	r.add(proc, false, Info, f, v, node, errText)
}

// Nemesis records a fault event.
func (r *Recorder) Nemesis(f string, v any) {
	r.add(0, true, Info, f, v, "", "")
}

// Err returns the first error met while encoding or writing.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Recorder) add(proc int, nemesis bool, typ, f string, v any, node, errText string) int64 {
	if r.sink != nil {
		return r.hand(proc, nemesis, typ, f, v, node, errText)
	}
	// Encode the value before taking the lock: by hand for the lab's
	// own value types, which is most of a history, else with
	// encoding/json. Both write the same bytes.
	var small [128]byte
	val, ok := appendValue(small[:0], v)
	if !ok || r.slow {
		val = nil
	}
	var verr error
	if val == nil {
		val, verr = json.Marshal(v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if verr != nil && r.err == nil {
		r.err = errors.Wrapf(verr, "encode value of %s %s", typ, f)
	}
	if verr != nil {
		val = []byte("null")
	}
	idx, t := r.stamp()
	str := appendJSONString
	if r.slow {
		str = appendJSONStringSlow
	}
	b := r.buf[:0]
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, idx, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"process":`...)
	if nemesis {
		b = append(b, `"nemesis"`...)
	} else {
		b = strconv.AppendInt(b, int64(proc), 10)
	}
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, typ)
	b = append(b, `,"f":`...)
	b = str(b, f)
	b = append(b, `,"value":`...)
	b = append(b, val...)
	if node != "" {
		b = append(b, `,"node":`...)
		b = str(b, node)
	}
	if errText != "" {
		b = append(b, `,"error":`...)
		b = str(b, errText)
	}
	b = append(b, "}\n"...)
	r.buf = b
	if _, err := r.w.Write(b); err != nil && r.err == nil {
		r.err = errors.Wrap(err, "write history")
	}
	return idx
}

// stamp numbers the next event and times it, never before the last; the
// caller holds mu.
func (r *Recorder) stamp() (index, at int64) {
	t := max(int64(r.now()), r.last)
	r.last = t
	r.next++
	return r.next - 1, t
}

// hand is add for a sink: the event as the Scanner would read its line.
func (r *Recorder) hand(proc int, nemesis bool, typ, f string, v any, node, errText string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	idx, t := r.stamp()
	e := &r.ev
	*e = Event{Index: idx, Time: t, Process: proc, Nemesis: nemesis, Type: typ, F: utf8Line(f), Node: utf8Line(node), Error: utf8Line(errText)}
	// A client operation's value of its own type is taken as it is; any
	// other goes as its line would have it, for the rules to decode.
	switch v := v.(type) {
	case *RangeValue:
		e.rng, e.decoded = *v, f == NextRange && !nemesis && utf8.ValidString(v.Name)
	case RangeValue:
		e.rng, e.decoded = v, f == NextRange && !nemesis && utf8.ValidString(v.Name)
	case *IDValue:
		e.id, e.decoded = *v, f == NextID && !nemesis && utf8.ValidString(v.Name)
	case IDValue:
		e.id, e.decoded = v, f == NextID && !nemesis && utf8.ValidString(v.Name)
	}
	if !e.decoded {
		e.rng, e.id = RangeValue{}, IDValue{}
		val, err := json.Marshal(v)
		if err != nil {
			if r.err == nil {
				r.err = errors.Wrapf(err, "encode value of %s %s", typ, f)
			}
			val = nil
		}
		if string(val) != "null" { // a line's null reads as no value
			e.Value = val
		}
	}
	if msg := r.rules.check(e); msg != "" {
		if r.err == nil {
			r.err = errors.Errorf("event %d breaks the history's rules: %s", idx, msg)
		}
		return idx
	}
	r.sink(e)
	return idx
}

// utf8Line is s as it reads back from a line: encoding/json writes each
// byte of invalid UTF-8 as U+FFFD.
func utf8Line(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, r) // RuneError for a bad byte
		i += size
	}
	return string(b)
}

// appendValue appends v as encoding/json would, for the value types of
// client operations; false for anything else, or a name that needs
// escaping.
func appendValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case RangeValue:
		return appendRange(b, &v)
	case *RangeValue:
		return appendRange(b, v)
	case IDValue:
		return appendID(b, &v)
	case *IDValue:
		return appendID(b, v)
	case string:
		if !plain(v) {
			return b, false
		}
		return appendQuoted(b, v), true
	case nil:
		return append(b, "null"...), true
	}
	return b, false
}

func appendRange(b []byte, v *RangeValue) ([]byte, bool) {
	if !plain(v.Name) {
		return b, false
	}
	b = append(b, `{"name":"`...)
	b = append(b, v.Name...)
	b = append(b, `","n":`...)
	b = strconv.AppendUint(b, v.N, 10)
	if v.From != 0 {
		b = append(b, `,"from":`...)
		b = strconv.AppendUint(b, v.From, 10)
	}
	if v.To != 0 {
		b = append(b, `,"to":`...)
		b = strconv.AppendUint(b, v.To, 10)
	}
	if v.Buffer {
		b = append(b, `,"buffer":true`...)
	}
	return append(b, '}'), true
}

func appendID(b []byte, v *IDValue) ([]byte, bool) {
	if !plain(v.Name) {
		return b, false
	}
	b = append(b, `{"name":"`...)
	b = append(b, v.Name...)
	b = append(b, '"')
	if v.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, v.ID, 10)
	}
	return append(b, '}'), true
}

// appendJSONString appends s as encoding/json would.
func appendJSONString(b []byte, s string) []byte {
	if plain(s) {
		return appendQuoted(b, s)
	}
	return appendJSONStringSlow(b, s)
}

func appendJSONStringSlow(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether encoding/json writes s as it is, between quotes:
// it escapes control characters, quotes and backslashes, <, > and & (for
// HTML), U+2028 and U+2029 (for JavaScript), and replaces invalid UTF-8.
func plain(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}
