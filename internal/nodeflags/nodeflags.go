// Package nodeflags reads the flags that every node command of the lab's
// systems takes alike: the peer list and the cluster's shared secret.
package nodeflags

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// SecretEnv is the environment variable that carries the cluster's
// shared secret when no secret file is given.
const SecretEnv = "RRSEQ_PEER_SECRET"

// Peers parses a comma-separated list of host:port peer addresses, each
// trimmed; an empty list is just self.
func Peers(list, self string) ([]string, error) {
	if list == "" {
		return []string{self}, nil
	}
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("%q is not host:port: %v", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Secret reads the shared secret from file, trimmed, or, with no file,
// from SecretEnv. A file that holds no secret is an error.
func Secret(file string) (string, error) {
	if file == "" {
		return os.Getenv(SecretEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return secret, nil
}
