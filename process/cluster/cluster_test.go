package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/seqlab/seqlab/internal/leftover"
	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/process/netns"
	"github.com/seqlab/seqlab/process/supervisor"
	"github.com/seqlab/seqlab/rr_seq/pb"
)

// needRoot skips where namespaces or FUSE cannot be had.
func needRoot(t *testing.T) {
	t.Helper()
	if err := netns.Check(); err != nil {
		t.Skipf("process mode needs namespaces: %v", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("process mode needs /dev/fuse: %v", err)
	}
}

// needProcessMode skips the tests that build rrseq-node and run a real
// cluster for seconds of wall time, unless SEQLAB_PROCESS=1.
func needProcessMode(t *testing.T) {
	t.Helper()
	if os.Getenv("SEQLAB_PROCESS") != "1" {
		t.Skip("runs rrseq-node processes in wall time: set SEQLAB_PROCESS=1")
	}
	needRoot(t)
}

var (
	binMu   sync.Mutex
	binDir  string
	binPath = map[string]string{}
)

// TestMain removes the binaries build made: a test binary's, not the
// machine's.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build builds a command of the module (./cmd/rrseq-node, say) once per
// test binary and returns its path.
func build(t *testing.T, pkg string) string {
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binPath[pkg]; ok {
		return p
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "seqlab-process-bin")
		require.NoError(t, err)
		binDir = dir
	}
	p := filepath.Join(binDir, filepath.Base(pkg))
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", p, pkg)
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, out)
	binPath[pkg] = p
	return p
}

func rrseqNode(t *testing.T) string { return build(t, "./cmd/rrseq-node") }

// client is a gRPC client of one node, from the clients' namespace.
func client(t *testing.T, c *Cluster, node string) pb.SequencerClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+c.ClientAddr(node),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return c.Dial(ctx, a) }),
	)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return pb.NewSequencerClient(cc)
}

func next(cl pb.SequencerClient, d time.Duration) (*pb.NextRangeResponse, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	r, err := cl.NextRange(ctx, &pb.NextRangeRequest{Name: "s", N: 10})
	return r, time.Since(start), err
}

// nextOK retries until the node hands out a range: after a restart it
// may be recovering.
func nextOK(t *testing.T, cl pb.SequencerClient) *pb.NextRangeResponse {
	t.Helper()
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, _, err := next(cl, 3*time.Second)
		if err == nil {
			return r
		}
		last = err
	}
	t.Fatalf("no range: %v", last)
	return nil
}

func TestRRSeqNodeUnderRealFaults(t *testing.T) {
	needProcessMode(t)
	bin := rrseqNode(t)
	before := leftover.Take()
	dir := t.TempDir()
	start := time.Now()
	c, err := Start(context.Background(), Config{
		Nodes: 3, Command: RRSeqNode(bin, true), Disk: true, Dir: dir, Seed: 1,
		Env: []string{"RRSEQ_PEER_SECRET=lab"},
	})
	require.NoError(t, err)
	t.Logf("setup: %v (namespaces, proxies, disks, 3 processes until accepting)", time.Since(start))
	mine := c.Lab().Inodes()
	defer func() {
		start := time.Now()
		require.NoError(t, c.Close())
		t.Logf("teardown: %v", time.Since(start))
		require.NoError(t, leftover.Since(before, leftover.Mine{NetNS: mine, Under: dir}))
	}()
	require.Len(t, c.Commands(), 3)
	require.Contains(t, c.Commands()[0], "--peers 198.18.0.1:7101,198.18.0.2:7101,198.18.0.3:7101")

	n1, n2, n3 := client(t, c, "n1"), client(t, c, "n2"), client(t, c, "n3")
	var got []*pb.NextRangeResponse
	got = append(got, nextOK(t, n1))
	t.Logf("first range after %v: [%d,%d)", time.Since(start), got[0].From, got[0].To)

	// Partition: n3 alone cannot reach a quorum; n1 and n2 can.
	edges := c.Net().Partition([]string{"n1", "n2"}, []string{"n3"})
	require.Len(t, edges, 4)
	_, _, err = next(n3, 2*time.Second)
	require.Error(t, err, "n3 handed out a range alone")
	got = append(got, nextOK(t, n1))
	for _, e := range edges {
		c.Net().HealLink(e.From, e.To)
	}
	got = append(got, nextOK(t, n3))

	// Pause: n2 stopped, n1 and n3 still a majority.
	c.Net().Pause("n2")
	got = append(got, nextOK(t, n1))
	_, _, err = next(n2, 500*time.Millisecond)
	require.Error(t, err, "a paused node answered")
	c.Net().Resume("n2")
	got = append(got, nextOK(t, n2))

	// Delay: every peer link of n2 takes 100ms each way.
	_, base, err := next(n2, 5*time.Second)
	require.NoError(t, err)
	slow := nemesis.Link{Latency: 100 * time.Millisecond}
	require.NoError(t, c.Net().AddHostDelay("n2", slow))
	r, slowed, err := next(n2, 10*time.Second)
	require.NoError(t, err)
	got = append(got, r)
	t.Logf("NextRange on n2: %v, %v with 100ms on its peer links", base, slowed)
	require.GreaterOrEqual(t, slowed, 200*time.Millisecond)
	c.Net().RemoveHostDelay("n2", slow)

	// Crash with power loss, restart from the disk.
	require.NoError(t, c.Crash("n1", true, false))
	require.False(t, c.Node("n1").Running())
	require.Equal(t, 1, c.Disk("n1").Losses())
	got = append(got, nextOK(t, n2))
	require.NoError(t, c.Restart("n1"))
	got = append(got, nextOK(t, n1))

	// Reset every connection between n1 and n2; the cluster goes on.
	c.Net().Reset("n1", "n2")
	got = append(got, nextOK(t, n1))
	require.NoError(t, c.Err())

	for i := 1; i < len(got); i++ {
		require.GreaterOrEqual(t, got[i].From, got[i-1].To, "range %d [%d,%d) overlaps or precedes [%d,%d)", i, got[i].From, got[i].To, got[i-1].From, got[i-1].To)
	}
	log, err := os.ReadFile(filepath.Join(dir, "nodes", "n1.log"))
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(log), "=== start"), "n1's log holds both its starts")
}

func TestAFailedStartLeavesNothing(t *testing.T) {
	needRoot(t)
	before := leftover.Take()
	dir := t.TempDir()
	_, err := Start(context.Background(), Config{
		Nodes: 3, Command: "sh -c 'echo {name} gives up; exit 2' {listen} {data_dir}", Disk: true, Dir: dir,
	})
	require.ErrorContains(t, err, "not ready")
	require.ErrorContains(t, err, "gives up")
	require.NoError(t, leftover.Since(before, leftover.Mine{Under: dir}))
}

func TestBadConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Nodes: 0, Command: "x {listen}", Dir: dir}, "cluster: 0 nodes, want 1 to 99"},
		{Config{Nodes: 3, Command: "x", Dir: dir}, "must take {listen}"},
		{Config{Nodes: 3, Command: "x {listen}", Dir: dir, Disk: true}, "must take {data_dir}"},
		{Config{Nodes: 3, Command: "x {port}", Dir: dir}, "unknown placeholder {port}"},
		{Config{Nodes: 3, Command: "x {listen}", Dir: filepath.Join(dir, "none")}, "does not exist"},
		{Config{Nodes: 3, Command: "x {listen}", Dir: dir, Link: nemesis.Link{Latency: -1}}, "negative"},
	} {
		_, err := Start(context.Background(), tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
}

// A program that acknowledges a write before it syncs it loses nothing
// to a SIGKILL (the page cache keeps the write) and loses the write to a
// power loss: that is what the FUSE disk is for.
func TestKillKeepsTheUnsyncedWriteAndPowerLossDropsIt(t *testing.T) {
	needRoot(t)
	before := leftover.Take()
	dir := t.TempDir()
	written := func(c *Cluster, node string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			// The shell creates the file before it writes to it.
			b, err := os.ReadFile(filepath.Join(dir, "nodes", node, "data", "acked"))
			if err == nil && !strings.HasSuffix(string(b), "ack\n") {
				err = fmt.Errorf("not written yet: %q", b)
			}
			return err
		}
	}
	c, err := Start(context.Background(), Config{
		Nodes: 1, Disk: true, Dir: dir, Ready: written,
		// Writes, never syncs, and waits (the {listen} is unused).
		Command: "sh -c 'echo ack >> {data_dir}/acked; exec sleep 60' {listen}",
	})
	require.NoError(t, err)
	mine := c.Lab().Inodes()
	defer func() {
		require.NoError(t, c.Close())
		require.NoError(t, leftover.Since(before, leftover.Mine{NetNS: mine, Under: dir}))
	}()
	data := filepath.Join(dir, "nodes", "n1", "data", "acked")

	require.NoError(t, c.Crash("n1", false, false))
	b, err := os.ReadFile(data)
	require.NoError(t, err, "a SIGKILL lost an unsynced write")
	require.Equal(t, "ack\n", string(b))

	require.NoError(t, c.Restart("n1")) // appends a second line
	require.NoError(t, c.Crash("n1", true, false))
	_, err = os.Stat(data)
	require.True(t, os.IsNotExist(err), "a power loss kept a file that was never synced: %v", err)
	require.NoError(t, c.Restart("n1"))
	b, err = os.ReadFile(data)
	require.NoError(t, err)
	require.Equal(t, "ack\n", string(b), "the restarted node wrote anew")
}

// A program nobody here wrote, through a command template: brokenseq's
// sloppy fail-over hands out duplicates as soon as its primary is cut off
// from its backups, every time; rrseq-node under the same schedule does
// not.
func TestACommandTemplateProgramIsCaught(t *testing.T) {
	needProcessMode(t)
	for _, tc := range []struct {
		name, command string
		env           []string
		wantDup       bool
	}{
		{"brokenseq", supervisorQuote(build(t, "./process/cluster/testdata/brokenseq")) +
			" --listen {listen} --peer-listen {peer_listen} --peers {peers} --index {index} --name {name}", nil, true},
		{"rrseq-node", RRSeqNode(rrseqNode(t), false), []string{"RRSEQ_PEER_SECRET=lab"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := leftover.Take()
			dir := t.TempDir()
			c, err := Start(context.Background(), Config{Nodes: 3, Command: tc.command, Env: tc.env, Dir: dir, Seed: 1})
			require.NoError(t, err)
			mine := c.Lab().Inodes()
			defer func() {
				require.NoError(t, c.Close())
				require.NoError(t, leftover.Since(before, leftover.Mine{NetNS: mine, Under: dir}))
			}()
			clients := []pb.SequencerClient{client(t, c, "n1"), client(t, c, "n2"), client(t, c, "n3")}
			nextOK(t, clients[0])

			c.Net().Partition([]string{"n1"}, []string{"n2", "n3"})
			owner := map[uint64]string{} // ID -> node that handed it out
			var dup string
			for deadline := time.Now().Add(4 * time.Second); dup == "" && time.Now().Before(deadline); {
				for i, cl := range clients {
					r, _, err := next(cl, 500*time.Millisecond)
					if err != nil {
						continue
					}
					for id := r.From; id < r.To && dup == ""; id++ {
						if o, ok := owner[id]; ok {
							dup = fmt.Sprintf("ID %d from %s and from n%d", id, o, i+1)
						}
						owner[id] = fmt.Sprintf("n%d", i+1)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("%d IDs handed out under the partition; duplicate: %q", len(owner), dup)
			if tc.wantDup {
				require.NotEmpty(t, dup, "the broken program handed out no duplicate")
			} else {
				require.Empty(t, dup)
			}
		})
	}
}

func supervisorQuote(s string) string { return supervisor.Quote([]string{s}) }
