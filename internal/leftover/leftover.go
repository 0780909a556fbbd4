// Package leftover takes stock of what the process mode can leave behind
// on a machine (network namespaces, network links, mounts, child
// processes), so that tests can show that a harness left nothing.
package leftover

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stock is what exists at one moment.
type Stock struct {
	NetNS    map[uint64]bool // network namespaces any process or descriptor holds
	OwnNetNS map[uint64]bool // those this process's threads or descriptors hold
	Links    []string        // the interfaces of this process's namespace
	Mounts   []string        // the mount points this process sees
	Children []int           // processes whose parent is this one
}

// Take takes stock now.
func Take() Stock {
	s := Stock{NetNS: map[uint64]bool{}, OwnNetNS: map[uint64]bool{}}
	self := fmt.Sprintf("/proc/%d", os.Getpid())
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		held := func(ino uint64) {
			s.NetNS[ino] = true
			if p == self {
				s.OwnNetNS[ino] = true
			}
		}
		paths, _ := filepath.Glob(p + "/task/[0-9]*/ns/net")
		for _, q := range append(paths, p+"/ns/net") {
			if ino, ok := nsInode(q); ok {
				held(ino)
			}
		}
		fds, _ := filepath.Glob(p + "/fd/*")
		for _, q := range fds {
			if l, err := os.Readlink(q); err == nil && strings.HasPrefix(l, "net:[") {
				if ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "net:["), "]"), 10, 64); err == nil {
					held(ino)
				}
			}
		}
		if st, err := os.ReadFile(p + "/stat"); err == nil {
			// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
			if i := strings.LastIndexByte(string(st), ')'); i >= 0 {
				f := strings.Fields(string(st)[i+1:])
				if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
					pid, _ := strconv.Atoi(filepath.Base(p))
					s.Children = append(s.Children, pid)
				}
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			s.Links = append(s.Links, i.Name)
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				s.Mounts = append(s.Mounts, f[4])
			}
		}
	}
	slices.Sort(s.Links)
	slices.Sort(s.Mounts)
	slices.Sort(s.Children)
	return s
}

func nsInode(path string) (uint64, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}

// Mine says which of the machine's things are the caller's: tests in
// other packages run at the same time, and their namespaces and mounts
// are theirs.
type Mine struct {
	// NetNS are namespaces the caller made: they count as left over
	// while anything on the machine holds them.
	NetNS []uint64
	// Under is the directory the caller mounts in: a new mount counts
	// only below it.
	Under string
}

// Since reports what exists now and did not in before, waiting up to a
// second for the kernel to finish releasing things (a dead child's
// reaping): nil, or an error naming each leftover. A namespace counts if
// this process holds it and did not before, or if it is one of mine's;
// a mount if it is new and below mine.Under; a child if it is new.
func Since(before Stock, mine Mine) error {
	if mine.Under == "" {
		return fmt.Errorf("leftover: say where the caller mounts (Mine.Under)")
	}
	var err error
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		err = diff(before, Take(), mine)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

func diff(before, now Stock, mine Mine) error {
	var out []string
	under := filepath.Clean(mine.Under) + "/"
	for ino := range now.NetNS {
		if (now.OwnNetNS[ino] && !before.OwnNetNS[ino]) || slices.Contains(mine.NetNS, ino) {
			out = append(out, fmt.Sprintf("network namespace net:[%d]", ino))
		}
	}
	for _, l := range now.Links {
		if !slices.Contains(before.Links, l) {
			out = append(out, "link "+l)
		}
	}
	for _, m := range now.Mounts {
		if !slices.Contains(before.Mounts, m) && strings.HasPrefix(m+"/", under) {
			out = append(out, "mount "+m)
		}
	}
	for _, c := range now.Children {
		if !slices.Contains(before.Children, c) {
			out = append(out, fmt.Sprintf("child process %d", c))
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return fmt.Errorf("left over: %s", strings.Join(out, ", "))
}
