package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Names, nodes and texts for random histories: plain ones, which both
// fast paths take, and ones encoding/json must escape or replace, which
// they must leave to it.
var (
	plainNames = []string{"default", "a", "orders-2024", "ünïcode", "日本", "tab stop", "U+FFFD \ufffd", "del\x7f"}
	oddNames   = []string{"", `quo"te`, `back\slash`, "tab\t", "nl\n", "<b>", "a<b", "a&b", "x>y", "line\u2028sep", "para\u2029", "bad\xffutf8", "nul\x00"}
)

func pick(rng *rand.Rand, odd bool) string {
	if odd && rng.IntN(4) == 0 {
		return oddNames[rng.IntN(len(oddNames))]
	}
	return plainNames[rng.IntN(len(plainNames))]
}

func randUint(rng *rand.Rand) uint64 {
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return rng.Uint64() // up to 20 digits
	}
	return rng.Uint64N(1000)
}

// randValue is a value of one of the kinds a Recorder is given.
func randValue(rng *rand.Rand, odd bool) any {
	switch rng.IntN(8) {
	case 0, 1, 2:
		return RangeValue{Name: pick(rng, odd), N: randUint(rng), From: randUint(rng), To: randUint(rng), Buffer: rng.IntN(2) == 0}
	case 3, 4:
		return IDValue{Name: pick(rng, odd), ID: randUint(rng)}
	case 5:
		return pick(rng, odd)
	case 6:
		return nil
	}
	return map[string]any{"groups": [][]string{{pick(rng, odd)}, {"n2", "n3"}}, "rate": rng.Float64(), "error": pick(rng, odd)}
}

// record writes a random history of n events, with odd names when odd,
// through a Recorder that is slow or not.
func record(seed uint64, n int, odd, slow bool) []byte {
	var buf bytes.Buffer
	clock := time.Duration(0)
	rec := NewRecorder(&buf, func() time.Duration { return clock })
	rec.slow = slow
	play(rec, &clock, seed, n, odd)
	if rec.Err() != nil {
		panic(rec.Err())
	}
	return buf.Bytes()
}

// play makes n random calls of rec, moving clock on.
func play(rec *Recorder, clock *time.Duration, seed uint64, n int, odd bool) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for range n {
		*clock += time.Duration(rng.IntN(1000))
		f := []string{NextRange, NextID}[rng.IntN(2)]
		if odd && rng.IntN(5) == 0 {
			f = pick(rng, odd)
		}
		proc := rng.IntN(100)
		v := randValue(rng, odd)
		node, text := "", ""
		if rng.IntN(2) == 0 {
			node = pick(rng, odd)
		}
		if rng.IntN(3) == 0 {
			text = pick(rng, odd)
		}
		switch rng.IntN(6) {
		case 0:
			rec.Invoke(proc, f, v)
		case 1:
			rec.Ok(proc, f, v, node, text)
		case 2:
			rec.Fail(proc, f, v, node, text)
		case 3:
			rec.Info(proc, f, v, node, text)
		default:
			rec.Nemesis("start-"+f, v)
		}
	}
}

// TestEventRecorderMatchesScanner: the events an event Recorder hands
// out are those a Scanner reads from the lines a Recorder writes for the
// same calls, the ones that break the rules left out of both; and the
// first of those is the event Recorder's error.
func TestEventRecorderMatchesScanner(t *testing.T) {
	for seed := range uint64(20) {
		odd := seed%2 == 1
		sc := NewScanner(bytes.NewReader(record(seed, 2000, odd, false)))
		var clock time.Duration
		var got []Event
		rec := NewEventRecorder(func(e *Event) {
			c := *e
			c.Value = bytes.Clone(e.Value)
			got = append(got, c)
		}, func() time.Duration { return clock })
		play(rec, &clock, seed, 2000, odd)
		i := 0
		for ; sc.Scan(); i++ {
			want := sc.Event()
			require.Less(t, i, len(got), "seed %d: the event Recorder handed out fewer events", seed)
			e := got[i]
			assert.Equal(t, []any{want.Index, want.Time, want.Process, want.Nemesis, want.Type, want.F, want.Node, want.Error},
				[]any{e.Index, e.Time, e.Process, e.Nemesis, e.Type, e.F, e.Node, e.Error}, "seed %d event %d", seed, i)
			assert.Equal(t, want.decoded, e.decoded, "seed %d event %d", seed, i)
			if want.decoded {
				assert.Equal(t, []any{want.rng, want.id}, []any{e.rng, e.id}, "seed %d event %d", seed, i)
			}
			if e.Value != nil || !e.decoded { // a value handed out decoded has no JSON
				assert.Equal(t, string(want.Value), string(e.Value), "seed %d event %d", seed, i)
			}
		}
		require.NoError(t, sc.Err())
		assert.Len(t, got, i, "seed %d", seed)
		if p := sc.Problems(); len(p) > 0 {
			require.Error(t, rec.Err(), "seed %d", seed)
			assert.Contains(t, rec.Err().Error(), p[0].Msg, "seed %d", seed)
		} else {
			assert.NoError(t, rec.Err(), "seed %d", seed)
		}
	}
}

// wellFormed is a history a Recorder wrote for a correct run: every line
// valid, so that Read keeps them all.
func wellFormed(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 9))
	var buf bytes.Buffer
	clock := time.Duration(0)
	rec := NewRecorder(&buf, func() time.Duration { return clock })
	next := uint64(1)
	for i := range n {
		clock += time.Duration(rng.IntN(1000))
		name := plainNames[rng.IntN(len(plainNames))]
		if i%50 == 7 {
			rec.Nemesis("start-partition", map[string]any{"groups": [][]string{{"n1"}, {"n2", "n3"}}})
		}
		if rng.IntN(2) == 0 {
			size := 1 + rng.Uint64N(10)
			v := RangeValue{Name: name, N: size, Buffer: rng.IntN(3) == 0}
			rec.Invoke(i, NextRange, v)
			v.From, v.To = next, next+size
			next += size
			rec.Ok(i, NextRange, v, "n1", "")
		} else {
			rec.Invoke(i, NextID, IDValue{Name: name})
			rec.Info(i, NextID, IDValue{Name: name}, "", "deadline exceeded")
		}
	}
	return buf.Bytes()
}

// TestReadFastPathTakesRecorderLines: the fast path reads every line a
// Recorder writes for the lab's values, and nothing off its shape. (The
// differential fuzz test proves nothing if the fast path takes nothing.)
func TestReadFastPathTakesRecorderLines(t *testing.T) {
	hist := wellFormed(1, 500)
	var fr fastReader
	lines := bytes.Split(bytes.TrimSuffix(hist, []byte("\n")), []byte("\n"))
	for i, l := range lines {
		var e Event
		if !fr.parse(l, &e) {
			t.Fatalf("line %d not taken by the fast path: %s", i+1, l)
		}
	}
	events, problems, err := Read(bytes.NewReader(hist))
	if err != nil || len(problems) > 0 || len(events) != len(lines) {
		t.Fatalf("got %d events, %v, %v; want %d events", len(events), problems, err, len(lines))
	}
	// And what Write writes back, too: it writes in the Recorder's shape.
	var out bytes.Buffer
	if err := Write(&out, events); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), hist) {
		t.Fatalf("Write does not give back the Recorder's bytes:\n%s\nwant\n%s", clipped(out.Bytes()), clipped(hist))
	}

	base := `{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"}`
	var e Event
	if !fr.parse([]byte(base), &e) {
		t.Fatal("the base line is not taken")
	}
	for _, off := range []string{
		`{"time":2,"index":1,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"}`,
		`{"index":1, "time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"} `,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1","x":1}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2,"x":1},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"n":1,"name":"a","from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"\u0061","n":1,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n\"1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1.0,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":01,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":18446744073709551616,"from":1,"to":2},"node":"n1"}`,
		`{"index":9223372036854775808,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":-2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"error":"x","node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a\xff","n":1,"from":1,"to":2},"node":"n1"}`,
		`{"index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":null}`,
		`{"Index":1,"time":2,"process":3,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2},"node":"n1"}`,
		"{\"index\":1,\"time\":2,\"process\":3,\"type\":\"ok\",\"f\":\"next-range\",\"value\":{\"name\":\"a\",\"n\":1,\"from\":1,\"to\":2},\"node\":\"n1\"}\r",
	} {
		if fr.parse([]byte(off), &e) {
			t.Errorf("fast path took a line off the Recorder's shape: %s", off)
		}
	}
}

// clipped quotes the start of b for a failure message.
func clipped(b []byte) string {
	if len(b) > 600 {
		return fmt.Sprintf("%q...", b[:600])
	}
	return fmt.Sprintf("%q", b)
}

// FuzzReadFastPath: Read with the fast path and without it give the same
// events (every field, decoded values included) and the same problems,
// on any input; and each line the fast path takes, encoding/json reads
// to the same event.
func FuzzReadFastPath(f *testing.F) {
	f.Add(wellFormed(1, 4))
	for seed := range uint64(8) {
		f.Add(record(seed, 6, seed%2 == 1, false))
	}
	golden, _ := filepath.Glob(filepath.Join("..", "testdata", "*.jsonl"))
	if len(golden) == 0 {
		f.Fatal("no golden histories in ../testdata")
	}
	for _, p := range golden {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"index":0,"time":0,"process":"nemesis","type":"info","f":"x","value":{"a":[1,-2.5e+3,true,false,null,{},[]],"b":"\xff"}}`))
	f.Add([]byte(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1},"color":"blue"}`))
	f.Add([]byte(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-id","value":null,"node":"","error":""}`))
	f.Fuzz(sameAsSlow)
}

// sameAsSlow fails t unless Read gives the same answers with the fast
// path as without it, and each line the fast path takes reads the same
// with encoding/json.
func sameAsSlow(t *testing.T, b []byte) {
	t.Helper()
	fe, fp, ferr := read(bytes.NewReader(b), true)
	se, sp, serr := read(bytes.NewReader(b), false)
	if ferr != nil || serr != nil {
		t.Fatalf("%s: errors: fast %v, slow %v", clipped(b), ferr, serr)
	}
	if !reflect.DeepEqual(fp, sp) {
		t.Fatalf("%s: problems differ:\nfast %v\nslow %v", clipped(b), fp, sp)
	}
	if len(fe) != len(se) {
		t.Fatalf("%s: fast read %d events, slow %d", clipped(b), len(fe), len(se))
	}
	for i := range fe {
		if !reflect.DeepEqual(fe[i], se[i]) {
			t.Fatalf("%s: event %d differs:\nfast %#v\nslow %#v", clipped(b), i, fe[i], se[i])
		}
	}
	// A Scanner gives Read's events, one at a time, and its problems;
	// each value, copied before the next Scan, is Read's.
	sc := NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		e := sc.Event()
		e.Value = bytes.Clone(e.Value)
		if n >= len(fe) || !reflect.DeepEqual(e, fe[n]) {
			t.Fatalf("%s: the Scanner's event %d differs from Read's", clipped(b), n)
		}
		n++
	}
	if sc.Err() != nil || n != len(fe) || !reflect.DeepEqual(sc.Problems(), fp) {
		t.Fatalf("%s: the Scanner read %d events, %v, problems %v; Read %d, %v", clipped(b), n, sc.Err(), sc.Problems(), len(fe), fp)
	}

	var fr fastReader
	for n, l := range bytes.Split(b, []byte("\n")) {
		var fast, slow Event
		if !fr.parse(l, &fast) {
			continue
		}
		if err := slow.UnmarshalJSON(l); err != nil {
			t.Fatalf("line %d: the fast path took what encoding/json refuses (%v): %s", n+1, err, clipped(l))
		}
		a := fast
		a.rng, a.id, a.decoded = RangeValue{}, IDValue{}, false
		if !reflect.DeepEqual(a, slow) {
			t.Fatalf("line %d read differently: %s\nfast %#v\nslow %#v", n+1, clipped(l), a, slow)
		}
		fv, sv := fast.validate(), slow.validate()
		if fmt.Sprint(fv) != fmt.Sprint(sv) {
			t.Fatalf("line %d validates differently: %s\nfast %v\nslow %v", n+1, clipped(l), fv, sv)
		}
		if fv == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("line %d decoded differently: %s\nfast %#v\nslow %#v", n+1, clipped(l), fast, slow)
		}
	}
}

// TestReadFastPathNeighbours: every line one edit away from a Recorder's
// (a byte deleted, inserted or replaced, from bytes that matter to JSON)
// reads the same with the fast path as without. The fuzzer finds such
// edits by chance; here each is tried.
func TestReadFastPathNeighbours(t *testing.T) {
	lines := []string{
		`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"default","n":10,"buffer":true}}`,
		`{"index":12,"time":1200000,"process":3,"type":"ok","f":"next-range","value":{"name":"default","n":10,"from":1,"to":11,"buffer":false},"node":"n2"}`,
		`{"index":3,"time":5,"process":10,"type":"ok","f":"next-id","value":{"name":"ü","id":7},"error":"x"}`,
		`{"index":4,"time":5,"process":1,"type":"info","f":"next-id","value":{"name":"a"},"node":"n1","error":"deadline exceeded"}`,
		`{"index":2,"time":1300000,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[["n1"],["n2","n3"]],"x":-1.5e+3,"y":[true,false,null,{}]}}`,
	}
	alphabet := []byte("0159-+.eE\"\\/,:{}[] \t\r\ntfnuA\x00\x1f\x7f\x80\xc3\xff")
	edits := 0
	for _, l := range lines {
		var fr fastReader
		var e Event
		if !fr.parse([]byte(l), &e) {
			t.Fatalf("the fast path does not take %s", l)
		}
		try := func(b []byte) {
			edits++
			sameAsSlow(t, b)
		}
		for i := range len(l) + 1 {
			if i < len(l) {
				try([]byte(l[:i] + l[i+1:]))
			}
			for _, c := range alphabet {
				try([]byte(l[:i] + string(c) + l[i:]))
				if i < len(l) {
					try([]byte(l[:i] + string(c) + l[i+1:]))
				}
			}
		}
	}
	// Nesting past encoding/json's limit of 10,000.
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	sameAsSlow(t, []byte(`{"index":0,"time":0,"process":"nemesis","type":"info","f":"x","value":`+deep+`}`))
	t.Logf("%d edits", edits)
}

// TestAppendValueMatchesJSON: the Recorder's hand encoding writes what
// encoding/json writes, or declines.
func TestAppendValueMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	taken := 0
	for i := range 20000 {
		v := randValue(rng, true)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendValue([]byte("prefix"), v)
		if !ok {
			if _, isMap := v.(map[string]any); !isMap && plainValue(v) {
				t.Fatalf("%d: declined a plain value %#v", i, v)
			}
			continue
		}
		taken++
		if string(got) != "prefix"+string(want) {
			t.Fatalf("%d: %#v\n got %s\nwant %s", i, v, got[len("prefix"):], want)
		}
	}
	if taken < 10000 {
		t.Fatalf("the fast encoding took only %d of 20000 values", taken)
	}
	for _, s := range append(append([]string{}, plainNames...), oddNames...) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		if plain(s) != (string(want) == `"`+s+`"`) {
			t.Errorf("plain(%q) = %v, but encoding/json writes %s", s, plain(s), want)
		}
	}
}

func plainValue(v any) bool {
	switch v := v.(type) {
	case RangeValue:
		return plain(v.Name)
	case IDValue:
		return plain(v.Name)
	case string:
		return plain(v)
	}
	return true
}

// TestRecorderFastMatchesSlow: a Recorder writes the same bytes with its
// fast encoding as with encoding/json alone, odd names included.
func TestRecorderFastMatchesSlow(t *testing.T) {
	for seed := range uint64(20) {
		odd := seed%2 == 1
		fast, slow := record(seed, 2000, odd, false), record(seed, 2000, odd, true)
		if !bytes.Equal(fast, slow) {
			fl, sl := strings.Split(string(fast), "\n"), strings.Split(string(slow), "\n")
			for i := range min(len(fl), len(sl)) {
				if fl[i] != sl[i] {
					t.Fatalf("seed %d line %d:\nfast %s\nslow %s", seed, i+1, fl[i], sl[i])
				}
			}
			t.Fatalf("seed %d: %d lines fast, %d slow", seed, len(fl), len(sl))
		}
	}
}

func BenchmarkRecorder(b *testing.B) {
	for _, slow := range []bool{false, true} {
		b.Run(fmt.Sprintf("slow=%v", slow), func(b *testing.B) {
			var buf bytes.Buffer
			rec := NewRecorder(&buf, func() time.Duration { return 0 })
			rec.slow = slow
			inv := RangeValue{Name: "default", N: 10}
			ok := RangeValue{Name: "default", N: 10, From: 123456, To: 123466}
			for b.Loop() {
				buf.Reset()
				rec.Invoke(1, NextRange, inv)
				rec.Ok(1, NextRange, ok, "n2", "")
				rec.Invoke(2, NextID, IDValue{Name: "default"})
				rec.Ok(2, NextID, IDValue{Name: "default", ID: 123457}, "", "")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(4*b.N), "ns/event")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	hist := wellFormed(1, 50_000)
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			b.SetBytes(int64(len(hist)))
			for b.Loop() {
				if _, p, err := read(bytes.NewReader(hist), fast); err != nil || len(p) > 0 {
					b.Fatal(err, p)
				}
			}
		})
	}
}
