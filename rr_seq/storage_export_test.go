package rr_seq

// Exports for the storage tests of package rr_seq_test.

// FrameSizeForTest is the size of the log frame of entries.
func FrameSizeForTest(entries []Entry) int { return len(appendFrame(nil, entries)) }

// CompactThresholdForTest is compactThreshold.
var CompactThresholdForTest = compactThreshold

// LegacyStateSizeForTest is the size of the earlier versions' state file
// of values, which each of their saves rewrote whole.
func LegacyStateSizeForTest(values map[string]uint64) int { return len(encodeState(values)) }
