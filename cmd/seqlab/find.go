package main

import (
	"sort"
	"strings"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/scenarios"
)

// findOne returns the scenario named name, or an error that suggests the
// closest names.
func findOne(name string) (scenarios.Scenario, error) {
	for _, sc := range scenarios.Catalogue() {
		if sc.Name == name {
			return sc, nil
		}
	}
	if members := group(name); len(members) > 0 {
		return scenarios.Scenario{}, errors.Errorf("%s is a group; name one of its scenarios: %s", name, strings.Join(names(members), ", "))
	}
	return scenarios.Scenario{}, unknown(name)
}

// findRun returns what `seqlab run NAME` runs: the scenario named, or
// every scenario of the group NAME (the name up to the slash), as
// go test -run NAME selects the group's test.
func findRun(name string) ([]scenarios.Scenario, error) {
	for _, sc := range scenarios.Catalogue() {
		if sc.Name == name {
			return []scenarios.Scenario{sc}, nil
		}
	}
	if members := group(name); len(members) > 0 {
		return members, nil
	}
	return nil, unknown(name)
}

func group(name string) []scenarios.Scenario {
	var out []scenarios.Scenario
	for _, sc := range scenarios.Catalogue() {
		if sc.Group() == name {
			out = append(out, sc)
		}
	}
	return out
}

func names(scs []scenarios.Scenario) []string {
	var out []string
	for _, sc := range scs {
		out = append(out, sc.Name)
	}
	return out
}

func unknown(name string) error {
	if s := suggest(name); len(s) > 0 {
		return errors.Errorf("no scenario or group %q; did you mean %s? (seqlab list shows them all)", name, strings.Join(s, " or "))
	}
	return errors.Errorf("no scenario or group %q (seqlab list shows them all)", name)
}

// suggest returns up to three scenario or group names closest to name,
// ignoring case: the same but for case first, then names that hold it or
// that it holds, then names a few edits away.
func suggest(name string) []string {
	q := strings.ToLower(name)
	if q == "" {
		return nil
	}
	type cand struct {
		name  string
		score int
	}
	var cands []cand
	for _, n := range append(scenarios.Groups(), names(scenarios.Catalogue())...) {
		l := strings.ToLower(n)
		_, rest, _ := strings.Cut(l, "/")
		score := -1
		switch d := distance(q, l); {
		case l == q:
			score = 0
		case strings.Contains(l, q) || rest != "" && strings.Contains(q, rest):
			score = 1
		case d <= max(2, len(q)/4):
			score = 1 + d
		}
		if score >= 0 {
			cands = append(cands, cand{n, score})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].score != cands[j].score {
			return cands[i].score < cands[j].score
		}
		return cands[i].name < cands[j].name
	})
	var out []string
	for _, c := range cands[:min(3, len(cands))] {
		out = append(out, c.name)
	}
	return out
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// shortLine cuts s at a word boundary to at most n bytes.
func shortLine(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndex(s[:n-3], " ")
	if cut < n/2 {
		cut = n - 3
	}
	return strings.TrimRight(s[:cut], " ,;:") + "..."
}
