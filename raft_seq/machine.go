package raft_seq

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/rr_seq"
	"github.com/seqlab/seqlab/seq"
)

// This file is the replicated state machine: what a committed entry means,
// and how the state is written into a snapshot. Every node applies the same
// entries in the same order to the same function, so they all hold the
// same values and compute the same range for each entry.

// command is the payload of one log entry: "name += n", asked for by
// request req of incarnation inc of node origin. The tag (origin, inc,
// req) lets the origin find its waiting request when it applies the
// entry; the other nodes apply it all the same.
type command struct {
	origin uint64
	inc    uint64
	req    uint64
	n      uint64
	name   string
}

const commandVersion = 1

func (c command) encode() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+len(c.name))
	b = append(b, commandVersion)
	b = binary.AppendUvarint(b, c.origin)
	b = binary.AppendUvarint(b, c.inc)
	b = binary.AppendUvarint(b, c.req)
	b = binary.AppendUvarint(b, c.n)
	return append(b, c.name...)
}

func decodeCommand(b []byte) (command, error) {
	if len(b) == 0 || b[0] != commandVersion {
		return command{}, errors.Wrap(seq.ErrInvalidArgument, "entry: unknown command version")
	}
	b = b[1:]
	var c command
	for _, f := range []*uint64{&c.origin, &c.inc, &c.req, &c.n} {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return command{}, errors.Wrap(seq.ErrInvalidArgument, "entry: truncated command")
		}
		*f, b = v, b[k:]
	}
	c.name = string(b)
	if err := rr_seq.ValidateRangeRequest(c.name, c.n, 0); err != nil {
		return command{}, errors.Wrap(err, "entry")
	}
	return c, nil
}

// String is the command's one text form, as in traces: origin.inc.req
// name+=n.
func (c command) String() string {
	return fmt.Sprintf("%d.%d.%d %q+=%d", c.origin, c.inc, c.req, c.name, c.n)
}

// formatEntry is the raft.EntryFormatter of traces and logs.
func formatEntry(data []byte) string {
	c, err := decodeCommand(data)
	if err != nil {
		return fmt.Sprintf("bad(%d bytes)", len(data))
	}
	return c.String()
}

// allocate applies "name += n" to values: it returns [old, old+n) and
// raises the name's value, or, if that would run past the last ID, an
// error and no change. A missing name is at seq.FirstID.
func allocate(values map[string]uint64, name string, n uint64) (seq.Range, error) {
	cur, ok := values[name]
	if !ok {
		cur = uint64(seq.FirstID)
	}
	if cur > math.MaxUint64-n {
		return seq.Range{}, errors.Wrapf(seq.ErrOverflow, "range of %d IDs of %q from %d would run past the last ID", n, name, cur)
	}
	values[name] = cur + n
	return seq.Range{From: seq.ID(cur), To: seq.ID(cur + n)}, nil
}

const valuesVersion = 1

// encodeValues is a snapshot's data: a version byte, a count, and each
// name (length first) and value, in name order so that equal states
// encode equally.
func encodeValues(values map[string]uint64) []byte {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	b := []byte{valuesVersion}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, values[k])
	}
	return b
}

func decodeValues(b []byte) (map[string]uint64, error) {
	if len(b) == 0 || b[0] != valuesVersion {
		return nil, errors.New("snapshot data: unknown version")
	}
	b = b[1:]
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, errors.New("snapshot data: bad count")
	}
	b = b[k:]
	values := make(map[string]uint64, count)
	for i := range count {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errors.Errorf("snapshot data: entry %d: bad name length", i)
		}
		name := string(b[k : k+int(n)])
		b = b[k+int(n):]
		v, k := binary.Uvarint(b)
		if k <= 0 || v < uint64(seq.FirstID) || rr_seq.ValidateName(name) != nil {
			return nil, errors.Errorf("snapshot data: bad entry %q", name)
		}
		if _, dup := values[name]; dup {
			return nil, errors.Errorf("snapshot data: %q twice", name)
		}
		b = b[k:]
		values[name] = v
	}
	if len(b) != 0 {
		return nil, errors.Errorf("snapshot data: %d bytes after the last entry", len(b))
	}
	return values, nil
}
