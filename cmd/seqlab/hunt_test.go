package main

import "testing"

func TestCompactSeeds(t *testing.T) {
	for _, tc := range []struct {
		in   []int64
		want string
	}{
		{nil, ""},
		{[]int64{7}, "7"},
		{[]int64{1, 2, 3, 4, 5}, "1-5"},
		{[]int64{1, 2, 3, 9, 12, 13}, "1-3,9,12-13"},
	} {
		if got := compactSeeds(tc.in); got != tc.want {
			t.Errorf("compactSeeds(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
