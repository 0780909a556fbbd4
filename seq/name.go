package seq

import (
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// MaxNameLen is the longest sequence name, in bytes, that the lab's
// systems take.
const MaxNameLen = 256

// ValidateName returns an error wrapping ErrInvalidArgument unless name
// is a usable sequence name: 1 to MaxNameLen bytes of UTF-8, without NUL
// or newline. Every system of the lab checks names with it, so that they
// take the same names.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.Wrap(ErrInvalidArgument, "sequence name is empty")
	case len(name) > MaxNameLen:
		return errors.Wrapf(ErrInvalidArgument, "sequence name is %d bytes, the limit is %d", len(name), MaxNameLen)
	case strings.ContainsAny(name, "\x00\n"):
		return errors.Wrap(ErrInvalidArgument, "sequence name contains NUL or newline")
	case !utf8.ValidString(name):
		return errors.Wrap(ErrInvalidArgument, "sequence name is not valid UTF-8")
	}
	return nil
}
