package checker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
)

// liveHistory is a fault from 1 s to 2 s, then, for each (start, outcome)
// pair, one next-range of its own process.
func liveHistory(t *testing.T, ops ...string) []history.Event {
	lines := []string{
		`{"index":0,"time":1000000000,"process":"nemesis","type":"info","f":"start-partition","value":null}`,
		`{"index":1,"time":2000000000,"process":"nemesis","type":"info","f":"stop-partition","value":null}`,
	}
	idx := 2
	for i, o := range ops {
		at, typ, _ := strings.Cut(o, " ")
		d, err := time.ParseDuration(at)
		require.NoError(t, err)
		lines = append(lines, fmt.Sprintf(`{"index":%d,"time":%d,"process":%d,"type":"invoke","f":"next-range","value":{"name":"s","n":1}}`, idx, d, i))
		idx++
		if typ == "pending" {
			continue
		}
		v := `{"name":"s","n":1}`
		if typ == "ok" {
			v = fmt.Sprintf(`{"name":"s","n":1,"from":%d,"to":%d}`, i+1, i+2)
		}
		lines = append(lines, fmt.Sprintf(`{"index":%d,"time":%d,"process":%d,"type":"%s","f":"next-range","value":%s}`, idx, d+10*time.Millisecond, i, typ, v))
		idx++
	}
	events, problems, err := history.Read(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	require.NoError(t, err)
	require.Empty(t, problems)
	return events
}

func TestLive(t *testing.T) {
	opts := Options{Promises: []string{Live}, LiveWithin: 3 * time.Second}
	for _, tc := range []struct {
		name   string
		ops    []string
		valid  Valid
		failed int
		word   Word
	}{
		{"serves again", []string{"2.5s info", "4s ok", "5s ok", "6s ok"}, ValidTrue, 0, Held},
		{"never serves again", []string{"4s ok", "5s info", "5.5s fail", "6s ok"}, ValidFalse, 2, Violated},
		{"nothing after the bound", []string{"2.5s info", "4s ok"}, ValidTrue, 0, NA},
		{"pending at the end is not judged", []string{"5s ok", "6s pending"}, ValidTrue, 0, Held},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(liveHistory(t, tc.ops...), opts)
			r := res.Checks[Live]
			require.Equal(t, tc.valid, r.Valid, r.Reason)
			d := r.Details.(LiveDetails)
			require.Equal(t, 2*time.Second, d.Heal)
			require.Equal(t, tc.failed, d.Failed)
			require.Len(t, r.Ops, tc.failed)
			require.Equal(t, tc.word, res.Word(Live))
		})
	}
	res := Check(liveHistory(t, "4s ok", "5s info"), Options{})
	require.Equal(t, NotPromised, res.Word(Live), "not a default promise of a bare history")
	require.Equal(t, ValidTrue, res.Valid)
}
