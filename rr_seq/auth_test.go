package rr_seq

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/seqlab/seqlab/rr_seq/pb"
)

// writeCerts makes a CA and one certificate it signs (for 127.0.0.1), and
// writes them as PEM files.
func writeCerts(t *testing.T, dir string) (cert, key, ca string) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &nodeKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(nodeKey)
	require.NoError(t, err)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
		return p
	}
	return write("node.pem", "CERTIFICATE", der), write("node.key", "EC PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}

// TestPeerMutualTLS: a cluster whose peer API is mutual TLS allocates, and
// a caller without a certificate from the cluster's CA is refused.
func TestPeerMutualTLS(t *testing.T) {
	cert, key, ca := writeCerts(t, t.TempDir())
	server, client, err := LoadPeerTLS(cert, key, ca)
	require.NoError(t, err)
	tc := startCluster(t, 3, false, func(i int, c *Config) {
		c.PeerSecret, c.PeerServerTLS, c.PeerClientTLS = "", server, client
	})
	r, err := dial(t, tc.addrs[0]).NextRange(context.Background(), &pb.NextRangeRequest{Name: "s", N: 5})
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.GetFrom())

	// TLS, but no client certificate: refused by the handshake.
	anon := &tls.Config{RootCAs: client.RootCAs, MinVersion: tls.VersionTLS13}
	cc, err := grpc.NewClient("passthrough:///"+tc.peers[0], grpc.WithTransportCredentials(credentials.NewTLS(anon)))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = pb.NewPeerClient(cc).Set(ctx, &pb.SetRequest{Name: "s", Base: 1, Value: 1 << 60})
	require.Error(t, err, "no certificate, no peer API")
	require.NotEqual(t, "OK", status.Code(err).String())
	require.Equal(t, uint64(6), tc.nodes[0].Values()["s"], "nothing changed")

	_, _, err = LoadPeerTLS(cert, key, filepath.Join(t.TempDir(), "missing.pem"))
	require.Error(t, err)
}
