package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seqlab/seqlab/checker/history"
	"github.com/seqlab/seqlab/report"
	"github.com/seqlab/seqlab/scenarios"
)

var readmePNG = flag.Bool("readme-png", false, "TestBrowser also writes the README's screenshot, "+readmeShot)

// readmeShot is the README's screenshot, relative to the module root: the
// report of the README's planted-bug run.
const readmeShot = "report/testdata/screenshot.png"

// browser finds Chromium the way chromedp would. Without one the test
// skips, saying how to get one; in CI (CI=true) it fails instead, since
// .ci/run installs it.
func browser(t *testing.T) string {
	for _, name := range []string{"headless_shell", "headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium on PATH (Debian: apt-get install chromium): the browser test needs one"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// pageFacts are what a person would see on a report, read in the browser.
type pageFacts struct {
	Title     string         `json:"title"`
	Plots     map[string]int `json:"plots"`  // plot -> fault bands drawn in it
	Height    map[string]int `json:"height"` // plot -> its height on screen, px
	Legend    []string       `json:"legend"`
	Violating int            `json:"violating"`
	Marked    int            `json:"marked"` // violating boxes drawn with the red border
	Words     map[string]string
}

const readFacts = `(() => {
	const plots = {}, height = {};
	for (const svg of document.querySelectorAll("svg.plot")) {
		const id = svg.id.replace("plot-", "");
		plots[id] = svg.querySelectorAll("g.band").length;
		height[id] = Math.round(svg.getBoundingClientRect().height);
	}
	const words = {};
	for (const tr of document.querySelectorAll("tr.check")) words[tr.dataset.check] = tr.dataset.word;
	const bad = [...document.querySelectorAll(".op[data-violates]")];
	return {
		title: document.title, plots, height, words,
		legend: [...document.querySelectorAll("#fault-legend span")].map(s => s.textContent),
		violating: bad.length,
		marked: bad.filter(e => getComputedStyle(e).borderTopColor === "rgb(198, 40, 40)").length,
	};
})()`

// TestBrowser opens the store's list and two reports in a real headless
// Chromium, one through seqlab serve and one straight from disk, and
// checks what a person would see: no console errors, the three plots,
// as many fault bands as the run had faults (a composed fault shading
// both kinds), the violating operations marked in the timeline. It
// keeps a screenshot of each page in the test's artifact directory
// (go test -artifacts keeps them).
func TestBrowser(t *testing.T) {
	exe := browser(t)
	start := time.Now()
	store := newTestStore(t)
	base := startServe(t, store.dir)
	out := t.ArtifactDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.WindowSize(1100, 1000))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Start the browser with a context that has no deadline (a deadline on
	// the first run would be the browser's), then bound each step.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]("1"))
	require.NoError(t, err, "start %s", exe)
	var mu sync.Mutex
	var console []string
	cctx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, fmt.Sprintf("%s (%s)", m, m.URL))
			mu.Unlock()
		}
	}()
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		require.NoError(t, chromedp.Do(sctx, actions...), what)
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, name), b, 0o644))
	}

	// The list, as seqlab serve shows it.
	step("the list", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#runs"))
	type row struct{ Dir, Status, Verdict, Color string }
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("tr.run")].map(tr => ({
		Dir: tr.dataset.dir, Status: tr.querySelector(".status").textContent, Verdict: tr.querySelector(".verdict").textContent,
		Color: getComputedStyle(tr.querySelector(".verdict")).color}))`))
	require.NoError(t, err)
	assert.Equal(t, []row{
		{store.mixed, "PASS", "held", "rgb(46, 125, 50)"},
		{store.bug, "PASS", "caught", "rgb(46, 125, 50)"},
	}, rows, "newest first, verdicts coloured")
	shot("list.png")

	// The report of the planted bug, from disk; that of the composed
	// faults, through the server.
	for _, c := range []struct{ name, url, dir string }{
		{"bug", "file://" + filepath.Join(store.dir, filepath.FromSlash(store.bug), report.File), store.bug},
		{"mixed", base + "/files/" + store.mixed + "/" + report.File, store.mixed},
	} {
		step(c.name, chromedp.Navigate(c.url), chromedp.WaitVisible("#timeline"))
		facts, err := chromedp.Run(ctx, chromedp.Evaluate[pageFacts](readFacts))
		require.NoError(t, err)
		dir := filepath.Join(store.dir, filepath.FromSlash(c.dir))
		kinds, bands := runFaults(t, dir)
		require.Len(t, facts.Plots, 3, "%s: latency, quantiles and throughput", c.name)
		for id, n := range facts.Plots {
			assert.Equal(t, bands, n, "%s: fault bands on the %s plot", c.name, id)
			assert.Greater(t, facts.Height[id], 150, "%s: the %s plot is drawn", c.name, id)
		}
		assert.Equal(t, kinds, facts.Legend, "%s: the fault legend", c.name)
		if c.name == "bug" {
			assert.Contains(t, facts.Title, "Bug/crash-all-in-memory, seed 1")
			assert.Equal(t, "caught", facts.Words["unique"])
			assert.Positive(t, facts.Violating, "the duplicates are marked in the timeline")
			assert.Equal(t, facts.Violating, facts.Marked, "in red")
		} else {
			assert.Equal(t, []string{"partition-isolate", "crash-one", "pause", "slow"}, facts.Legend, "a+b shades both kinds")
			assert.Equal(t, 4, bands)
			assert.Zero(t, facts.Violating, "a run that held marks nothing")
		}
		shot("report-" + c.name + ".png")
	}

	// porcupine's view, through the server: its title names the run.
	step("porcupine's view", chromedp.Navigate(base+"/files/"+store.bug+"/linearizable-default.html"))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "porcupine: sequence default of Bug/crash-all-in-memory, seed 1 (sim mode)", title)

	if *readmePNG {
		writeReadmePNG(t, ctx)
	}
	stopConsole()
	<-listening
	mu.Lock()
	defer mu.Unlock()
	var errs []string
	for _, m := range console {
		if !strings.Contains(m, "linearizable-default.html") { // porcupine's page is porcupine's
			errs = append(errs, m)
		}
	}
	assert.Empty(t, errs, "console messages")
	t.Logf("browser test: %v; screenshots in %s", time.Since(start).Round(time.Millisecond), out)
}

// runFaults are the fault kinds of a run's history in order of first
// start, and the bands each plot should draw: one per kind of each
// fault window.
func runFaults(t *testing.T, dir string) ([]string, int) {
	events, _, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	require.NoError(t, err)
	kinds := []string{}
	seen := map[string]bool{}
	bands := 0
	for _, e := range events {
		if name, ok := strings.CutPrefix(e.F, "start-"); ok && e.Nemesis {
			for _, k := range strings.Split(name, "+") {
				bands++
				if !seen[k] {
					seen[k] = true
					kinds = append(kinds, k)
				}
			}
		}
	}
	return kinds, bands
}

// writeReadmePNG runs the README's planted bug, as its "Reports" section
// does, and writes the top of its report as the README's screenshot, in
// a palette of 256 colours to keep it small.
func writeReadmePNG(t *testing.T, ctx context.Context) {
	sc, err := scenarios.Find("Bug/crash-all-in-memory")
	require.NoError(t, err)
	// In a directory of its own, so that the page names store/..., as
	// the README's run would, and no path of this machine.
	module, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	work := t.TempDir()
	t.Chdir(work)
	rep, err := scenarios.RunSim(sc, scenarios.Options{Seed: 1, HasSeed: true, Out: io.Discard})
	require.NoError(t, err)
	b, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		err := chromedp.Do(ctx, chromedp.EmulateViewport(1000, 1900), chromedp.Navigate("file://"+filepath.Join(work, rep.Dir, report.File)),
			chromedp.WaitVisible("#timeline"))
		if err != nil {
			return nil, err
		}
		return chromedp.CaptureScreenshot()(ctx, tg)
	})
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, paletted(img)))
	path := filepath.Join(module, filepath.FromSlash(readmeShot))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	t.Logf("wrote %s, %d KB", readmeShot, buf.Len()>>10)
}

// paletted maps img onto 256 of its colours, each pixel to the nearest.
// A page has few colours beyond its text's edges, but the edges' greys
// outnumber its reds and greens: the palette takes the commonest colours
// that are not near one it has already, then the commonest of the rest.
func paletted(img image.Image) *image.Paletted {
	r := img.Bounds()
	count := map[color.RGBA]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	cs := make([]color.RGBA, 0, len(count))
	for c := range count {
		cs = append(cs, c)
	}
	key := func(c color.RGBA) uint32 { return uint32(c.R)<<16 | uint32(c.G)<<8 | uint32(c.B) }
	sort.Slice(cs, func(i, j int) bool {
		if count[cs[i]] != count[cs[j]] {
			return count[cs[i]] > count[cs[j]]
		}
		return key(cs[i]) < key(cs[j])
	})
	dist := func(a, b color.RGBA) int {
		dr, dg, db := int(a.R)-int(b.R), int(a.G)-int(b.G), int(a.B)-int(b.B)
		return dr*dr + dg*dg + db*db
	}
	var pal color.Palette
	taken := map[color.RGBA]bool{}
	for _, c := range cs {
		if len(pal) == 256 {
			break
		}
		far := true
		for _, p := range pal {
			if dist(c, p.(color.RGBA)) < 24*24 {
				far = false
				break
			}
		}
		if far {
			pal, taken[c] = append(pal, c), true
		}
	}
	for _, c := range cs {
		if len(pal) == 256 {
			break
		}
		if !taken[c] {
			pal = append(pal, c)
		}
	}
	out := image.NewPaletted(r, pal)
	near := map[color.RGBA]uint8{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			i, ok := near[c]
			if !ok {
				i = uint8(pal.Index(c))
				near[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	return out
}
