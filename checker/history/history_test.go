package history_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
)

func TestRecorderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Duration(0)
	rec := history.NewRecorder(&buf, func() time.Duration { return clock })
	i := rec.Invoke(0, history.NextRange, history.RangeValue{Name: "a", N: 2})
	assert.Equal(t, int64(0), i)
	clock = 5
	rec.Nemesis("start-pause", map[string]any{"node": "n1"})
	clock = 3 // a clock that goes back is held at its last value
	rec.Ok(0, history.NextRange, history.RangeValue{Name: "a", N: 2, From: 1, To: 3}, "n1", "")
	rec.Invoke(1, history.NextID, history.IDValue{Name: "a"})
	rec.Info(1, history.NextID, history.IDValue{Name: "a"}, "", "deadline \"exceeded\"")
	require.NoError(t, rec.Err())
	assert.Equal(t, `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":2}}
{"index":1,"time":5,"process":"nemesis","type":"info","f":"start-pause","value":{"node":"n1"}}
{"index":2,"time":5,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":2,"from":1,"to":3},"node":"n1"}
{"index":3,"time":5,"process":1,"type":"invoke","f":"next-id","value":{"name":"a"}}
{"index":4,"time":5,"process":1,"type":"info","f":"next-id","value":{"name":"a"},"error":"deadline \"exceeded\""}
`, buf.String())

	events, problems, err := history.Read(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Empty(t, problems)
	require.Len(t, events, 5)
	assert.True(t, events[1].Nemesis)
	r, err := events[2].Range()
	require.NoError(t, err)
	assert.Equal(t, history.RangeValue{Name: "a", N: 2, From: 1, To: 3}, r)

	// Write then Read gives the same events, unknown fields included.
	in := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1},"color":"blue"}` + "\n"
	events, _, err = history.Read(strings.NewReader(in))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, history.Write(&out, events))
	assert.JSONEq(t, in, out.String())
}

func TestRecorderConcurrent(t *testing.T) {
	var buf bytes.Buffer
	rec := history.NewRecorder(&buf, func() time.Duration { return 0 })
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for range 100 {
				rec.Invoke(p, history.NextRange, history.RangeValue{Name: "a", N: 1})
				rec.Fail(p, history.NextRange, history.RangeValue{Name: "a", N: 1}, "", "no")
			}
		})
	}
	wg.Wait()
	events, problems, err := history.Read(&buf)
	require.NoError(t, err)
	assert.Empty(t, problems)
	assert.Len(t, events, 1600)
}

func TestReadProblems(t *testing.T) {
	line := func(s string) string { return s + "\n" }
	inv := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`
	cases := []struct {
		name, in, msg string
	}{
		{"not json", line("nope"), "not valid JSON"},
		{"array", line("[1]"), "cannot unmarshal"},
		{"no process", line(`{"index":0,"time":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), `missing "process"`},
		{"bad process", line(`{"index":0,"time":0,"process":"bob","type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "neither"},
		{"negative process", line(`{"index":0,"time":0,"process":-1,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "neither"},
		{"bad type", line(`{"index":0,"time":0,"process":0,"type":"done","f":"next-range","value":{"name":"a","n":1}}`), "is not invoke"},
		{"bad f", line(`{"index":0,"time":0,"process":0,"type":"invoke","f":"jump","value":{"name":"a"}}`), "not next-range or next-id"},
		{"n zero", line(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":0}}`), "n = 0"},
		{"no name", line(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"n":1}}`), "no name"},
		{"no value", line(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-id"}`), "missing"},
		{"index", line(inv) + line(`{"index":0,"time":0,"process":1,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "index 0 does not follow 0"},
		{"negative index", line(`{"index":-1,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "negative index"},
		{"negative time", line(`{"index":0,"time":-1,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "negative time"},
		{"ok without invoke", line(`{"index":0,"time":0,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2}}`), "no operation in flight"},
		{"double invoke", line(inv) + line(`{"index":1,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "in flight"},
		{"wrong size", line(inv) + line(`{"index":1,"time":0,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":5}}`), "does not hold"},
		{"mismatch", line(inv) + line(`{"index":1,"time":0,"process":0,"type":"ok","f":"next-range","value":{"name":"b","n":1,"from":1,"to":2}}`), "does not match"},
		{"mismatch n", line(inv) + line(`{"index":1,"time":0,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":2,"from":1,"to":3}}`), "does not match"},
		{"mismatch id", line(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-id","value":{"name":"a"}}`) +
			line(`{"index":1,"time":0,"process":0,"type":"ok","f":"next-id","value":{"name":"b","id":1}}`), `(name "b" n 0 vs name "a" n 0)`},
		{"after info", line(inv) + line(`{"index":1,"time":0,"process":0,"type":"info","f":"next-range","value":{"name":"a","n":1}}`) +
			line(`{"index":2,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}`), "after an info"},
		{"empty line", line(inv) + "\n", "empty line"},
		{"truncated", line(inv) + `{"index":1,"ti`, history.Truncated},
		{"too long", line(`{"x":"`+strings.Repeat("a", history.MaxLine)+`"}`) + line(inv), "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, problems, err := history.Read(strings.NewReader(tc.in))
			require.NoError(t, err)
			require.NotEmpty(t, problems)
			assert.Contains(t, problems[len(problems)-1].Msg, tc.msg)
		})
	}
	// The line after a too-long one is still read.
	events, _, err := history.Read(strings.NewReader(cases[len(cases)-1].in))
	require.NoError(t, err)
	assert.Len(t, events, 1)
}

// TestReadAfterCorruptLine: a line lost in the middle is reported once;
// the lines after it keep their indices, which skip it, and are read.
func TestReadAfterCorruptLine(t *testing.T) {
	in := `{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}
{"index":1,"time":1,"process":1,"type":"inv\u0000garbage
{"index":2,"time":2,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":1,"to":2}}
{"index":3,"time":3,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}
{"index":4,"time":4,"process":0,"type":"ok","f":"next-range","value":{"name":"a","n":1,"from":2,"to":3}}
{"index":4,"time":5,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}
`
	events, problems, err := history.Read(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, problems, 2)
	assert.Equal(t, 2, problems[0].Line)
	assert.Contains(t, problems[0].Msg, "not valid JSON")
	assert.Equal(t, history.LineError{Line: 6, Msg: "index 4 does not follow 4 (events must be numbered in order)"}, problems[1])
	var got []int64
	for _, e := range events {
		got = append(got, e.Index)
	}
	assert.Equal(t, []int64{0, 2, 3, 4}, got)
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"index":0,"time":0,"process":0,"type":"invoke","f":"next-range","value":{"name":"a","n":1}}` + "\n"))
	f.Add([]byte(`{"index":0,"time":0,"process":"nemesis","type":"info","f":"x","value":null}`))
	f.Add([]byte("\n\n{]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		events, problems, err := history.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err) // only I/O can fail, and a byte slice has none
		}
		for i, e := range events {
			if e.Index < 0 || i > 0 && e.Index <= events[i-1].Index {
				t.Fatalf("event %d has index %d after %d", i, e.Index, events[max(i-1, 0)].Index)
			}
		}
		for _, p := range problems {
			if p.Line < 1 || p.Msg == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
		// What was read writes back and reads again the same.
		var buf bytes.Buffer
		if err := history.Write(&buf, events); err != nil {
			t.Fatal(err)
		}
		again, problems2, err := history.Read(&buf)
		if err != nil || len(problems2) > 0 || len(again) != len(events) {
			t.Fatalf("round trip: %v %v %d != %d", err, problems2, len(again), len(events))
		}
	})
}
