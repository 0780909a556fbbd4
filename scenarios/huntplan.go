package scenarios

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"
)

// HuntGCPercent is the GC's target (GOGC) while a hunt runs. A seed
// keeps little once it is checked (its checker's operations, a few
// megabytes at most for a 30-second run) and allocates a few times that,
// so at the default 100 the collector runs several times a seed; at 1600
// it runs every few seeds, and a hunt on 2 workers holds about 110 MB
// (50 at 400) for 8% more seeds a minute. HuntMemoryLimit bounds the heap
// of a hunt of long seeds, which keep more.
const HuntGCPercent = 1600

// HuntMemoryLimit is the soft memory limit (GOMEMLIMIT) while a hunt
// runs, unless one is set already: near it the collector runs as often as
// it must.
const HuntMemoryLimit = 1 << 30

var huntGC struct {
	sync.Mutex
	hunts int   // hunts running
	prev  int   // the percent before the first of them
	limit int64 // and the memory limit
}

// raiseGC sets HuntGCPercent, unless GOGC is higher or off already, and
// HuntMemoryLimit, unless a limit is set, until the last hunt running
// calls the func it returns.
func raiseGC() (restore func()) {
	huntGC.Lock()
	defer huntGC.Unlock()
	if huntGC.hunts == 0 {
		huntGC.prev = debug.SetGCPercent(HuntGCPercent)
		if huntGC.prev < 0 || huntGC.prev > HuntGCPercent {
			debug.SetGCPercent(huntGC.prev)
		}
		huntGC.limit = debug.SetMemoryLimit(-1) // -1 reads it
		if huntGC.limit == math.MaxInt64 {
			debug.SetMemoryLimit(HuntMemoryLimit)
		}
	}
	huntGC.hunts++
	return func() {
		huntGC.Lock()
		defer huntGC.Unlock()
		if huntGC.hunts--; huntGC.hunts == 0 {
			debug.SetGCPercent(huntGC.prev)
			debug.SetMemoryLimit(huntGC.limit)
		}
	}
}

// HuntPlan says which seeds a hunt runs, and how.
type HuntPlan struct {
	From, To int64
	Workers  int
	// Shard and Shards split the range: the hunt runs the seeds whose
	// position in it (seed-From) is Shard modulo Shards. Shards 0 is 1.
	Shard, Shards int64
	// MaxFailures stops the hunt once it has that many hits (0: no
	// limit). Seeds under way still finish.
	MaxFailures int
	// Store, when set, is where the hunt keeps its journal: a directory
	// of its own under Store/hunts/, in which it records every seed's
	// outcome as it goes.
	Store string
	// Resume continues the newest journal of the same scenario, seeds,
	// shard and run options, if there is one: it runs only the seeds the
	// journal lacks, and none if the hunt had finished, so a hunt run
	// again with Resume (a pod restarted, say) reports what it found.
	Resume bool
}

// Validate returns an error unless the plan is usable.
func (p HuntPlan) Validate() error {
	switch {
	case p.From < 0 || p.To < p.From || p.To-p.From >= 10_000_000:
		return errors.Errorf("bad seed range %d-%d", p.From, p.To)
	case p.Shards < 0 || p.Shard < 0 || (p.Shards > 0 && p.Shard >= p.Shards) || (p.Shards == 0 && p.Shard > 0):
		return errors.Errorf("bad shard %d/%d: want I/N with 0 <= I < N", p.Shard, p.Shards)
	case p.MaxFailures < 0:
		return errors.Errorf("bad max failures %d", p.MaxFailures)
	}
	return nil
}

func (p HuntPlan) shards() int64 { return max(p.Shards, 1) }

// seeds returns the seeds of the plan's shard, in order.
func (p HuntPlan) seeds() []int64 {
	var out []int64
	for s := p.From + p.Shard; s <= p.To; s += p.shards() {
		out = append(out, s)
	}
	return out
}

// journalHeader is the first line of a hunt's journal: what the hunt is.
// Two shards merge only if their headers agree but for the shard.
type journalHeader struct {
	Scenario    string        `json:"scenario"`
	System      string        `json:"system,omitempty"` // empty: rr_seq
	From        int64         `json:"from"`
	To          int64         `json:"to"`
	Shard       int64         `json:"shard"`
	Shards      int64         `json:"shards"`
	TimeLimit   time.Duration `json:"time_limit_ns,omitempty"`
	Concurrency int           `json:"concurrency,omitempty"`
	Swarm       string        `json:"swarm,omitempty"`
	Buggify     bool          `json:"buggify,omitempty"`
	Build       Build         `json:"build"`
}

func (h journalHeader) sameHunt(o journalHeader) bool {
	return h.Scenario == o.Scenario && orRR(h.System) == orRR(o.System) && h.From == o.From && h.To == o.To && h.Shards == o.Shards &&
		h.TimeLimit == o.TimeLimit && h.Concurrency == o.Concurrency && h.Swarm == o.Swarm && h.Buggify == o.Buggify
}

// JournalFile is the file in a hunt's directory that records it: a JSON
// header line, then one line per seed run: "SEED ok", "SEED hit" or
// "SEED error MESSAGE".
const JournalFile = "journal.txt"

// journal appends seeds' outcomes to a hunt's journal file. It flushes at
// most every second and at the end, so a lost machine loses at most the
// last second's seeds, which a resume runs again.
type journal struct {
	f     *os.File
	w     *bufio.Writer
	last  time.Time
	fresh bool
}

func (j *journal) add(seed int64, hit bool, errText string) error {
	line := strconv.FormatInt(seed, 10)
	switch {
	case errText != "":
		line += " error " + strings.ReplaceAll(errText, "\n", " ")
	case hit:
		line += " hit"
	default:
		line += " ok"
	}
	if _, err := j.w.WriteString(line + "\n"); err != nil {
		return err
	}
	if time.Since(j.last) >= time.Second {
		j.last = time.Now()
		return j.w.Flush()
	}
	return nil
}

func (j *journal) close() error {
	err := j.w.Flush()
	if serr := j.f.Sync(); err == nil {
		err = serr
	}
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// journalEntry is one seed's recorded outcome.
type journalEntry struct {
	hit     bool
	errText string
}

// readJournal reads a hunt's journal. A torn last line (a machine lost
// mid-write) is ignored; anything else malformed is an error.
func readJournal(path string) (journalHeader, map[int64]journalEntry, error) {
	var h journalHeader
	b, err := os.ReadFile(path)
	if err != nil {
		return h, nil, errors.Wrap(err, "read hunt journal")
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) == 0 || json.Unmarshal(lines[0], &h) != nil || h.Scenario == "" {
		return h, nil, errors.Errorf("%s: not a hunt journal (its first line is no header)", path)
	}
	done := map[int64]journalEntry{}
	for i, l := range lines[1:] {
		if len(l) == 0 {
			continue
		}
		last := i == len(lines)-2 && !bytes.HasSuffix(b, []byte("\n"))
		seedText, rest, _ := strings.Cut(string(l), " ")
		seed, err := strconv.ParseInt(seedText, 10, 64)
		kind, msg, _ := strings.Cut(rest, " ")
		if err != nil || (kind != "ok" && kind != "hit" && kind != "error") || seed < h.From || seed > h.To {
			if last {
				break // torn: the seed runs again
			}
			return h, nil, errors.Errorf("%s line %d: malformed %q", path, i+2, l)
		}
		done[seed] = journalEntry{hit: kind == "hit", errText: msg}
	}
	return h, done, nil
}

// huntDirName names a hunt's directory under Store/hunts.
func huntDirName(p HuntPlan) string {
	name := fmt.Sprintf("seeds-%d-%d", p.From, p.To)
	if p.Shards > 1 {
		name += fmt.Sprintf("-shard-%d-of-%d", p.Shard, p.Shards)
	}
	return name
}

// openJournal finds the journal to resume or makes a new one, and returns
// it with the outcomes it already holds.
func openJournal(sc Scenario, p HuntPlan, opts Options) (*journal, string, map[int64]journalEntry, error) {
	h := journalHeader{Scenario: sc.Name, System: opts.System, From: p.From, To: p.To, Shard: p.Shard, Shards: p.shards(),
		TimeLimit: opts.TimeLimit, Concurrency: opts.Concurrency, Swarm: opts.Swarm, Buggify: opts.Buggify, Build: CurrentBuild()}
	parent := filepath.Join(p.Store, "hunts", filepath.FromSlash(sc.Name))
	if p.Resume {
		dir, done, err := newestJournal(parent, h)
		if err != nil {
			return nil, "", nil, err
		}
		if dir != "" {
			path := filepath.Join(dir, JournalFile)
			if err := cutTornLine(path); err != nil {
				return nil, "", nil, errors.Wrap(err, "resume hunt journal")
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return nil, "", nil, errors.Wrap(err, "resume hunt journal")
			}
			return &journal{f: f, w: bufio.NewWriter(f)}, dir, done, nil
		}
	}
	dir, err := newRunDir(parent, time.Now().UTC().Format("20060102T150405.000000")+"-"+huntDirName(p))
	if err != nil {
		return nil, "", nil, err
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, "", nil, errors.Wrap(err, "create hunt journal")
	}
	j := &journal{f: f, w: bufio.NewWriter(f), fresh: true}
	if _, err := j.w.Write(append(hb, '\n')); err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return j, dir, map[int64]journalEntry{}, nil
}

// cutTornLine truncates a journal after its last whole line, so that
// what a resume appends starts a line of its own.
func cutTornLine(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return nil
	}
	return os.Truncate(path, int64(bytes.LastIndexByte(b, '\n')+1))
}

// newestJournal returns the newest hunt directory under parent whose
// journal is of the same hunt and shard.
func newestJournal(parent string, h journalHeader) (string, map[int64]journalEntry, error) {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, errors.Wrap(err, "look for a hunt to resume")
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // timestamped: oldest first
	for i := len(names) - 1; i >= 0; i-- {
		dir := filepath.Join(parent, names[i])
		jh, done, err := readJournal(filepath.Join(dir, JournalFile))
		if err != nil {
			continue // not a journal of ours; a corrupt one is reported by merge
		}
		if jh.sameHunt(h) && jh.Shard == h.Shard {
			return dir, done, nil
		}
	}
	return "", nil, nil
}

// HuntSeeds runs the plan's seeds of sc in the simulator (see Hunt). With
// a Store it journals each seed's outcome, so that a hunt stopped by
// Ctrl-C or a lost machine resumes where it was (Resume), and shards
// merge (MergeHunts).
func HuntSeeds(sc Scenario, p HuntPlan, opts Options, progress func(HuntProgress)) (HuntReport, error) {
	if err := p.Validate(); err != nil {
		return HuntReport{}, err
	}
	workers := max(p.Workers, 1)
	defer raiseGC()()
	resolved, _, err := resolve(sc, opts.System)
	if err != nil {
		return HuntReport{}, err
	}
	opts.System = resolved.System()
	if _, _, err := SimConfig(sc, Options{System: opts.System, Seed: p.From, HasSeed: true, TimeLimit: opts.TimeLimit, Concurrency: opts.Concurrency, Swarm: opts.Swarm, Buggify: opts.Buggify}); err != nil {
		return HuntReport{}, err
	}
	rep := HuntReport{Scenario: sc.Name, System: opts.System, From: p.From, To: p.To, Shard: p.Shard, Shards: p.shards()}
	seeds := p.seeds()
	rep.Total = int64(len(seeds))
	var j *journal
	done := map[int64]journalEntry{}
	if p.Store != "" {
		var err error
		j, rep.Dir, done, err = openJournal(sc, p, opts)
		if err != nil {
			return HuntReport{}, err
		}
	}
	for _, s := range seeds {
		if e, ok := done[s]; ok {
			rep.Resumed++
			rep.Done++
			switch {
			case e.errText != "":
				rep.Errors = append(rep.Errors, fmt.Sprintf("seed %d: %s", s, e.errText))
			case e.hit:
				rep.Hits = append(rep.Hits, s)
			}
		}
	}
	start := time.Now()
	queue := make(chan int64)
	stopFeed := make(chan struct{})
	var stopOnce sync.Once
	var mu sync.Mutex
	var jerr error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seed := range queue {
				cfg, _, err := SimConfig(sc, Options{System: opts.System, Seed: seed, HasSeed: true, TimeLimit: opts.TimeLimit, Concurrency: opts.Concurrency, Swarm: opts.Swarm, Buggify: opts.Buggify})
				var out SimOutcome
				if err == nil {
					out, err = simulateSeed(sc, cfg)
				}
				mu.Lock()
				rep.Done++
				hit := err == nil && len(out.Violated()) > 0
				errText := ""
				switch {
				case err != nil:
					errText = err.Error()
					rep.Errors = append(rep.Errors, fmt.Sprintf("seed %d: %v", seed, err))
				case hit:
					rep.Hits = append(rep.Hits, seed)
				}
				if j != nil && jerr == nil {
					jerr = j.add(seed, hit, errText)
				}
				if p.MaxFailures > 0 && len(rep.Hits) >= p.MaxFailures {
					stopOnce.Do(func() { close(stopFeed) })
				}
				if progress != nil {
					progress(HuntProgress{Done: rep.Done, Total: rep.Total, Hits: len(rep.Hits), Errors: len(rep.Errors), Elapsed: time.Since(start)})
				}
				mu.Unlock()
			}
		})
	}
	var stop <-chan struct{}
	if opts.Context != nil {
		stop = opts.Context.Done()
	}
	if p.MaxFailures > 0 && len(rep.Hits) >= p.MaxFailures {
		stopOnce.Do(func() { close(stopFeed) })
	}
feed:
	for _, s := range seeds {
		if _, ok := done[s]; ok {
			continue
		}
		select {
		case queue <- s:
		case <-stop:
			rep.Interrupted = true
			break feed
		case <-stopFeed:
			rep.Stopped = true
			break feed
		}
	}
	close(queue)
	wg.Wait()
	slices.Sort(rep.Hits)
	slices.Sort(rep.Errors)
	rep.Elapsed = time.Since(start)
	if j != nil {
		if err := j.close(); jerr == nil {
			jerr = err
		}
		if jerr != nil {
			return rep, errors.Wrapf(jerr, "hunt journal %s", rep.Dir)
		}
	}
	return rep, nil
}

// MergeReport is the union of a hunt's shards.
type MergeReport struct {
	Scenario string
	From, To int64
	Shards   int64
	Dirs     []string // one per shard, in shard order
	Done     int64
	Hits     []int64
	Errors   []string
	// Builds lists the builds the shards ran, when they differ.
	Builds []string
}

// MergeHunts combines the journals of the shards of one hunt, found in
// dirs (hunt directories, or directories holding them at any depth). It
// refuses shards of different hunts, a shard twice, a missing shard and
// an unfinished one. It reads and changes nothing else.
func MergeHunts(dirs ...string) (*MergeReport, error) {
	var journals []string
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			return nil, errors.Wrap(err, "merge")
		}
		if !st.IsDir() {
			return nil, errors.Errorf("merge: %s is not a directory", d)
		}
		err = filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && e.Name() == JournalFile {
				journals = append(journals, path)
			}
			return nil
		})
		if err != nil {
			return nil, errors.Wrap(err, "merge")
		}
	}
	if len(journals) == 0 {
		return nil, errors.Errorf("merge: no hunt journal (%s) under %s", JournalFile, strings.Join(dirs, ", "))
	}
	var first journalHeader
	byShard := map[int64]string{}
	rep := &MergeReport{}
	builds := map[string]bool{}
	for i, path := range journals {
		h, done, err := readJournal(path)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = h
			rep.Scenario, rep.From, rep.To, rep.Shards = h.Scenario, h.From, h.To, h.Shards
			rep.Dirs = make([]string, h.Shards)
		}
		if !h.sameHunt(first) {
			return nil, errors.Errorf("merge: %s is a hunt of %s seeds %d-%d in %d shards, %s of %s seeds %d-%d in %d: not one hunt",
				filepath.Dir(path), h.Scenario, h.From, h.To, h.Shards, filepath.Dir(journals[0]), first.Scenario, first.From, first.To, first.Shards)
		}
		if other, ok := byShard[h.Shard]; ok {
			return nil, errors.Errorf("merge: shard %d/%d twice: %s and %s", h.Shard, h.Shards, other, filepath.Dir(path))
		}
		byShard[h.Shard] = filepath.Dir(path)
		rep.Dirs[h.Shard] = filepath.Dir(path)
		want := HuntPlan{From: h.From, To: h.To, Shard: h.Shard, Shards: h.Shards}.seeds()
		if len(done) < len(want) {
			return nil, errors.Errorf("merge: shard %d/%d in %s is unfinished (%d of %d seeds): resume it with --resume",
				h.Shard, h.Shards, filepath.Dir(path), len(done), len(want))
		}
		builds[h.Build.String()] = true
		for _, s := range want {
			e := done[s]
			rep.Done++
			switch {
			case e.errText != "":
				rep.Errors = append(rep.Errors, fmt.Sprintf("seed %d: %s", s, e.errText))
			case e.hit:
				rep.Hits = append(rep.Hits, s)
			}
		}
	}
	for s := range rep.Shards {
		if rep.Dirs[s] == "" {
			return nil, errors.Errorf("merge: shard %d/%d of %s seeds %d-%d is missing", s, rep.Shards, rep.Scenario, rep.From, rep.To)
		}
	}
	if len(builds) > 1 {
		for b := range builds {
			rep.Builds = append(rep.Builds, b)
		}
		slices.Sort(rep.Builds)
	}
	slices.Sort(rep.Hits)
	slices.Sort(rep.Errors)
	return rep, nil
}

// orRR names rr_seq where a record from before there were several
// systems names none.
func orRR(system string) string {
	if system == "" {
		return RRSeq
	}
	return system
}
