package deps

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/pkg/errors"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/health"
	_ "google.golang.org/grpc/reflection"
	_ "google.golang.org/protobuf/proto"
)
