package rr_seq

import "github.com/seqlab/seqlab/seq"

// Buffer is the client's store of fetched IDs (seq.Buffer).
type Buffer = seq.Buffer

// NewBuffer returns an empty buffer (seq.NewBuffer).
func NewBuffer(rangeSize uint64, lookahead int) *Buffer { return seq.NewBuffer(rangeSize, lookahead) }
