package rr_seq

import (
	"unicode/utf8"

	"github.com/pkg/errors"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// laxCodec is the node's server codec: gRPC's proto codec, except that a
// top-level string field holding invalid UTF-8 still decodes. Go's proto3
// decoder rejects such a field before any handler runs, and gRPC turns
// every decode error into Internal, so a client that sent a bad name
// would be told the server failed. With this codec the bad string reaches
// the handler, whose validation answers InvalidArgument as for any other
// bad name. Nested messages are decoded strictly.
type laxCodec struct{ encoding.CodecV2 }

func newLaxCodec() laxCodec { return laxCodec{encoding.GetCodecV2("proto")} }

func (c laxCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	if laxErr := unmarshalLax(data.Materialize(), m); laxErr != nil {
		return err // the strict error says more than the lax one
	}
	return nil
}

// unmarshalLax decodes b into m after blanking the top-level string
// fields that are not valid UTF-8, then sets those fields to their raw
// bytes. It fails if b is malformed in any other way.
func unmarshalLax(b []byte, m proto.Message) error {
	fields := m.ProtoReflect().Descriptor().Fields()
	clean := make([]byte, 0, len(b))
	raw := map[protoreflect.FieldNumber]string{}
	relaxed := false
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if vn < 0 {
			return protowire.ParseError(vn)
		}
		field := rest[:n+vn]
		rest = rest[n+vn:]
		if fd := fields.ByNumber(num); fd != nil && fd.Kind() == protoreflect.StringKind &&
			fd.Cardinality() != protoreflect.Repeated && typ == protowire.BytesType {
			s, _ := protowire.ConsumeBytes(field[n:])
			if !utf8.Valid(s) {
				raw[num] = string(s) // the last occurrence wins, as in proto
				relaxed = true
				continue
			}
			delete(raw, num)
		}
		clean = append(clean, field...)
	}
	if !relaxed {
		return errors.New("no invalid UTF-8 string field to relax")
	}
	if err := proto.Unmarshal(clean, m); err != nil {
		return err
	}
	for num, s := range raw {
		m.ProtoReflect().Set(fields.ByNumber(num), protoreflect.ValueOfString(s))
	}
	return nil
}
