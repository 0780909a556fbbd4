package rr_seq

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

func TestLaxCodec(t *testing.T) {
	c := newLaxCodec()
	decode := func(b []byte) (*pb.NextRangeRequest, error) {
		var m pb.NextRangeRequest
		return &m, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &m)
	}

	m, err := decode(rawNextRange("ok", 3))
	require.NoError(t, err)
	require.Equal(t, "ok", m.Name)
	require.EqualValues(t, 3, m.N)

	// A bad string reaches the handler, with every other field intact.
	m, err = decode(rawNextRange("\xff", 7))
	require.NoError(t, err)
	require.Equal(t, "\xff", m.Name)
	require.EqualValues(t, 7, m.N)
	require.ErrorContains(t, ValidateName(m.Name), "UTF-8")

	// The last occurrence of a field wins, valid or not.
	b := append(rawNextRange("\xff", 1), protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "good")...)
	m, err = decode(b)
	require.NoError(t, err)
	require.Equal(t, "good", m.Name)

	// Anything else malformed is still an error.
	for _, bad := range [][]byte{
		{0x0a},                                // a tag with no length
		{0x0a, 0x05, 'a'},                     // a length past the end
		append(rawNextRange("\xff", 1), 0xff), // a bad UTF-8 name and a torn tag
	} {
		_, err := decode(bad)
		require.Error(t, err, "%x", bad)
	}
}
