package sim

import "testing"

// TestTail: the two-load tail is the byte loop it replaced, which the trace
// hash and the order of events due at once were defined by.
func TestTail(t *testing.T) {
	s := "abcdefg\xff\x80\x01"
	for i := 0; i < len(s); i++ {
		for n := 1; n <= 7 && i+n <= len(s); n++ {
			x := s[i : i+n]
			var w uint64
			for k := 0; k < len(x); k++ {
				w |= uint64(x[k]) << (8 * k)
			}
			if tail(x) != w {
				t.Fatalf("%q: %x != %x", x, tail(x), w)
			}
		}
	}
}
