package deps
import (
 _ "google.golang.org/grpc"
 _ "github.com/anishathalye/porcupine"
 _ "github.com/stretchr/testify/require"
 _ "github.com/pkg/errors"
 _ "go.uber.org/goleak"
 _ "google.golang.org/protobuf/proto"
 _ "google.golang.org/grpc/health"
 _ "google.golang.org/grpc/reflection"
)
