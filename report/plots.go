package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/seqlab/seqlab/checker/history"
)

// The plots' size, in points; the page scales them to its width.
const (
	plotW = 10 * vg.Inch
	plotH = 3 * vg.Inch
)

// maxPoints caps the latency scatter: past it, every fail and info is
// drawn and the ok operations are thinned evenly.
var maxPoints = 3000

// maxBuckets caps the buckets of the quantile and throughput plots.
const maxBuckets = 150

// The outcomes' colours, the same in every plot and in the timeline.
var outcomeColor = map[string]string{history.Ok: "#2b7bba", history.Fail: "#d7301f", history.Info: "#e69500"}

// kindColors colour the fault kinds, in order of first appearance.
var kindColors = []string{"#9467bd", "#17becf", "#bcbd22", "#e377c2", "#8c564b", "#7f7f7f", "#2ca02c", "#393b79"}

func kindColor(k int) string { return kindColors[k%len(kindColors)] }

// figure is one plot, as inline SVG.
type figure struct {
	ID, Title string
	SVG       template.HTML
	Legend    []legendItem
	Note      string
}

type legendItem struct {
	Label, Color, Shape string // shape: dot, triangle, line
}

// sample is one completed operation on the scatter.
type sample struct {
	t, lat float64 // seconds since the start, milliseconds
	typ, f code    // r.names
}

// samples are the completed client operations, by completion.
func (r *run) samples() []sample {
	n := 0
	for _, o := range r.ops {
		if o.end >= 0 {
			n++
		}
	}
	out := make([]sample, 0, n)
	for _, o := range r.ops {
		if o.end < 0 {
			continue
		}
		out = append(out, sample{t: secs(o.endT), lat: float64(o.endT-o.invT) / 1e6, typ: o.typ, f: o.f})
	}
	return out
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

// figures draws the three plots. They share the time axis and the fault
// bands.
func (r *run) figures() (figs []figure, err error) {
	defer func() {
		// gonum panics on input it cannot draw; a report says so instead.
		if p := recover(); p != nil {
			figs, err = nil, errors.Errorf("draw plots: %v", p)
		}
	}()
	ss := r.samples()
	width := bucketWidth(secs(r.end))
	lat, err := r.latencyPlot(ss)
	if err != nil {
		return nil, err
	}
	q, err := r.quantilePlot(ss, width)
	if err != nil {
		return nil, err
	}
	tp, err := r.throughputPlot(ss, width)
	if err != nil {
		return nil, err
	}
	return []figure{lat, q, tp}, nil
}

// newPlot is a plot on the run's time axis.
func (r *run) newPlot(ylabel string) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil // the fault bands are drawn beneath, and the page is white
	p.X.Label.Text = "time since the start of the run (s" + r.clock() + ")"
	p.Y.Label.Text = ylabel
	for _, f := range []*vg.Length{&p.X.Label.TextStyle.Font.Size, &p.Y.Label.TextStyle.Font.Size} {
		*f = 11
	}
	for _, ts := range []*draw.TextStyle{&p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label} {
		ts.Font.Variant = "Sans"
	}
	p.X.Min, p.X.Max = 0, math.Max(secs(r.end), 1e-3)
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	p.Add(g)
	return p
}

// clock says which clock the history's times are on.
func (r *run) clock() string {
	switch r.info.Mode {
	case "grpc", "sim":
		return ", virtual"
	}
	return ""
}

func (r *run) latencyPlot(ss []sample) (figure, error) {
	fig := figure{ID: "latency", Title: "Latency of each operation, by outcome (log scale)"}
	p := r.newPlot("latency (ms)")
	logY(p, ss, func(s sample) float64 { return s.lat })
	shown, note := r.thin(ss, maxPoints)
	fig.Note = note
	fs := r.functions(ss)
	for _, typ := range []string{history.Ok, history.Fail, history.Info} {
		for fi, f := range fs {
			var xys plotter.XYs
			for _, s := range shown {
				if r.names.str(s.typ) == typ && r.names.str(s.f) == f {
					xys = append(xys, plotter.XY{X: s.t, Y: math.Max(s.lat, minLatency)})
				}
			}
			if len(xys) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return fig, errors.Wrap(err, "latency plot")
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: hex(outcomeColor[typ]), Radius: 1.3, Shape: glyph(fi)}
			p.Add(sc)
			fig.Legend = append(fig.Legend, legendItem{Label: typ + " " + f, Color: outcomeColor[typ], Shape: shapeName(fi)})
		}
	}
	return r.finish(p, fig)
}

// minLatency is the floor of the log axis, in ms: a latency of 0 (the
// simulator can complete an operation at the instant it began) is drawn
// there.
const minLatency = 1e-3

func (r *run) quantilePlot(ss []sample, width float64) (figure, error) {
	fig := figure{ID: "quantiles", Title: fmt.Sprintf("Latency quantiles of ok operations, per %s (log scale)", seconds(width))}
	p := r.newPlot("latency (ms)")
	n := buckets(r.end, width)
	lat := make([][]float64, n)
	for _, s := range ss {
		if r.names.str(s.typ) == history.Ok {
			b := min(n-1, int(s.t/width))
			lat[b] = append(lat[b], math.Max(s.lat, minLatency))
		}
	}
	logY(p, ss, func(s sample) float64 {
		if r.names.str(s.typ) != history.Ok {
			return 0
		}
		return s.lat
	})
	qs := []struct {
		name  string
		q     float64
		color string
	}{{"p50", 0.50, "#1b9e77"}, {"p95", 0.95, "#7570b3"}, {"p99", 0.99, "#d95f02"}, {"max", 1, "#444444"}}
	for _, l := range lat {
		sort.Float64s(l)
	}
	for _, q := range qs {
		// A bucket where nothing succeeded breaks the line, so that an
		// outage shows as a gap rather than a slope.
		var runs []plotter.XYs
		var cur plotter.XYs
		for b, l := range lat {
			if len(l) == 0 {
				if len(cur) > 0 {
					runs, cur = append(runs, cur), nil
				}
				continue
			}
			from, w := span(b, n, r.end, width)
			cur = append(cur, plotter.XY{X: from + w/2, Y: l[min(len(l)-1, int(q.q*float64(len(l))))]})
		}
		if len(cur) > 0 {
			runs = append(runs, cur)
		}
		if len(runs) == 0 {
			continue
		}
		for _, xys := range runs {
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fig, errors.Wrap(err, "quantile plot")
			}
			l.LineStyle = draw.LineStyle{Color: hex(q.color), Width: 1.2}
			pts.GlyphStyle = draw.GlyphStyle{Color: hex(q.color), Radius: 1, Shape: draw.CircleGlyph{}}
			p.Add(l, pts)
		}
		fig.Legend = append(fig.Legend, legendItem{Label: q.name, Color: q.color, Shape: "line"})
	}
	if n == maxBuckets {
		fig.Note = fmt.Sprintf("Downsampled: the run is split into %d buckets of %s.", n, seconds(width))
	}
	return r.finish(p, fig)
}

func (r *run) throughputPlot(ss []sample, width float64) (figure, error) {
	fig := figure{ID: "throughput", Title: fmt.Sprintf("Throughput: operations completed per second, by outcome, per %s", seconds(width))}
	p := r.newPlot("operations per second")
	n := buckets(r.end, width)
	counts := map[string][]float64{}
	for _, typ := range []string{history.Ok, history.Fail, history.Info} {
		counts[typ] = make([]float64, n)
	}
	for _, s := range ss {
		if c, ok := counts[r.names.str(s.typ)]; ok {
			c[min(n-1, int(s.t/width))]++
		}
	}
	top := 1.0
	for _, typ := range []string{history.Ok, history.Fail, history.Info} {
		any := false
		xys := make(plotter.XYs, n)
		for b, c := range counts[typ] {
			from, w := span(b, n, r.end, width)
			xys[b] = plotter.XY{X: from + w/2, Y: c / w}
			top = math.Max(top, c/w)
			any = any || c > 0
		}
		if !any {
			continue
		}
		if err := addLine(p, xys, outcomeColor[typ]); err != nil {
			return fig, err
		}
		fig.Legend = append(fig.Legend, legendItem{Label: typ, Color: outcomeColor[typ], Shape: "line"})
	}
	p.Y.Min, p.Y.Max = 0, top*1.1
	if n == maxBuckets {
		fig.Note = fmt.Sprintf("Downsampled: the run is split into %d buckets of %s.", n, seconds(width))
	}
	return r.finish(p, fig)
}

func addLine(p *plot.Plot, xys plotter.XYs, c string) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return errors.Wrap(err, "line")
	}
	l.LineStyle = draw.LineStyle{Color: hex(c), Width: 1.2}
	p.Add(l)
	return nil
}

// logY puts p's y axis on a log scale that covers every value of ss
// (values of 0 or less are left out), in whole decades.
func logY(p *plot.Plot, ss []sample, val func(sample) float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		if v := val(s); v > 0 {
			lo, hi = math.Min(lo, math.Max(v, minLatency)), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	lo, hi = math.Pow10(int(math.Floor(math.Log10(lo)))), math.Pow10(int(math.Ceil(math.Log10(hi))))
	if hi <= lo {
		hi = lo * 10
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = lo, hi
}

// thin keeps at most max samples, in order: every fail and info while
// they take at most half, and the ok ones evenly in what is left; past
// half, both evenly. It says what it kept.
func (r *run) thin(ss []sample, max int) ([]sample, string) {
	if len(ss) <= max {
		return ss, ""
	}
	oks := 0
	for _, s := range ss {
		if r.names.str(s.typ) == history.Ok {
			oks++
		}
	}
	bad := len(ss) - oks
	keepBad := min(bad, max-min(oks, max/2))
	keepOk := min(oks, max-keepBad)
	var out []sample
	var k, j int
	for _, s := range ss {
		// Keep a sample when it crosses the next multiple of keep/n.
		if r.names.str(s.typ) == history.Ok {
			if (k+1)*keepOk/oks > k*keepOk/oks {
				out = append(out, s)
			}
			k++
		} else {
			if (j+1)*keepBad/bad > j*keepBad/bad {
				out = append(out, s)
			}
			j++
		}
	}
	how := "every fail and info and an even share of the ok ones"
	if keepBad < bad {
		how = "an even share of the ok ones and of the others"
	}
	return out, fmt.Sprintf("Downsampled: %d of %d operations are drawn, %s.", len(out), len(ss), how)
}

// functions are the operations in ss, sorted.
func (r *run) functions(ss []sample) []string {
	seen := map[code]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s.f] {
			seen[s.f] = true
			out = append(out, r.names.str(s.f))
		}
	}
	sort.Strings(out)
	return out
}

func glyph(i int) draw.GlyphDrawer {
	switch i % 3 {
	case 1:
		return draw.TriangleGlyph{}
	case 2:
		return draw.BoxGlyph{}
	}
	return draw.CircleGlyph{}
}

func shapeName(i int) string { return []string{"dot", "triangle", "square"}[i%3] }

// bucketWidth is a round width, in seconds, that splits a run of d
// seconds into about 60 buckets and never more than maxBuckets.
func bucketWidth(d float64) float64 {
	for _, w := range []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600} {
		if d/w <= 60 {
			return w
		}
	}
	return math.Max(600, d/maxBuckets)
}

// buckets is the number of buckets of width that cover a run ending at
// end. The last takes what is left over, and a remainder under a
// quarter of a bucket joins the bucket before it rather than stand
// alone: a rate over a few milliseconds says nothing.
func buckets(end int64, width float64) int {
	d := secs(end)
	n := max(1, int(math.Ceil(d/width)))
	if n > 1 && d-float64(n-1)*width < width/4 {
		n--
	}
	return min(n, maxBuckets)
}

// span is the start and the length, in seconds, of bucket b of n.
func span(b, n int, end int64, width float64) (float64, float64) {
	from := float64(b) * width
	if b == n-1 {
		return from, math.Max(secs(end)-from, 1e-9)
	}
	return from, width
}

// seconds is a bucket width for people: 500ms, 1s.
func seconds(w float64) string {
	if w < 1 {
		return fmt.Sprintf("%gms", w*1000)
	}
	return fmt.Sprintf("%gs", w)
}

func hex(s string) color.Color {
	var c color.RGBA
	c.A = 255
	fmt.Sscanf(s, "#%02x%02x%02x", &c.R, &c.G, &c.B)
	return c
}

// finish draws p as SVG, puts the fault bands beneath its data, and
// returns it for inline use in the page.
func (r *run) finish(p *plot.Plot, fig figure) (figure, error) {
	c := vgsvg.New(plotW, plotH)
	dc := draw.New(c)
	p.Draw(dc)
	da := p.DataCanvas(dc)
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return fig, errors.Wrap(err, "write svg")
	}
	svg := buf.String()
	// gonum writes a standalone document: drop its prologue, name the
	// element, and open the group that flips the y axis, beneath whose
	// first child the bands go.
	start := strings.Index(svg, "<svg ")
	flip := strings.Index(svg, "<g transform=\"scale(1, -1)")
	if start < 0 || flip < start {
		return fig, errors.New("draw plots: gonum's SVG is not in the shape the report expects")
	}
	eol := strings.IndexByte(svg[flip:], '\n')
	if eol < 0 {
		return fig, errors.New("draw plots: gonum's SVG is not in the shape the report expects")
	}
	cut := flip + eol + 1
	var out strings.Builder
	fmt.Fprintf(&out, "<svg class=\"plot\" id=\"plot-%s\" role=\"img\" aria-label=\"%s\" ", fig.ID, template.HTMLEscapeString(fig.Title))
	out.WriteString(strings.TrimPrefix(svg[start:cut], "<svg "))
	r.bands(&out, p, da)
	out.WriteString(svg[cut:])
	fig.SVG = template.HTML(out.String())
	return fig, nil
}

// laneH is the height of a fault kind's strip along the top of a plot.
const laneH = 5

// bands writes one band per fault kind of each fault window: a light
// shade over the whole height of the data and a strip in the kind's own
// lane along the top, so that overlapping faults stay apart. A composed
// fault a+b gives a band to each of a and b. A fault event that is
// neither a start nor a stop is a line.
func (r *run) bands(w *strings.Builder, p *plot.Plot, da draw.Canvas) {
	x := func(t int64) float64 {
		v := da.X(p.X.Norm(secs(t))).Points()
		return math.Max(da.Min.X.Points(), math.Min(da.Max.X.Points(), v))
	}
	y0, y1 := da.Min.Y.Points(), da.Max.Y.Points()
	lane := map[string]int{}
	for k, name := range r.kinds {
		lane[name] = k
	}
	w.WriteString("<g class=\"bands\">\n")
	for _, win := range r.windows {
		x0, x1 := x(win.start), x(win.end)
		for _, kind := range win.kinds {
			k := lane[kind]
			col := kindColor(k)
			ly := y1 - float64(k+1)*laneH
			fmt.Fprintf(w, "<g class=\"band\" data-kind=\"%s\" data-window=\"%d\"><title>%s</title>", template.HTMLEscapeString(kind), win.startIdx, template.HTMLEscapeString(win.describe(kind)))
			fmt.Fprintf(w, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" fill-opacity=\"0.10\"/>", x0, y0, math.Max(x1-x0, 0.5), y1-y0, col)
			fmt.Fprintf(w, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" fill-opacity=\"0.75\"/></g>\n", x0, ly, math.Max(x1-x0, 0.5), laneH, col)
		}
	}
	for _, e := range r.points {
		fmt.Fprintf(w, "<g class=\"fault-point\"><title>%s</title><rect x=\"%.2f\" y=\"%.2f\" width=\"1\" height=\"%.2f\" fill=\"#555555\"/></g>\n",
			template.HTMLEscapeString(fmt.Sprintf("%s at %s (event %d)", e.F, seconds(secs(e.Time)), e.Index)), x(e.Time), y0, y1-y0)
	}
	w.WriteString("</g>\n")
}

// describe is a window's hover text.
func (w window) describe(kind string) string {
	stop := fmt.Sprintf("stopped at %.3fs (event %d)", secs(w.end), w.stopIdx)
	if w.stopIdx < 0 {
		stop = "never stopped"
	}
	s := fmt.Sprintf("%s: started at %.3fs (event %d), %s", kind, secs(w.start), w.startIdx, stop)
	if kind != w.name {
		s += ", as part of " + w.name
	}
	if w.err != "" {
		s += "; error: " + w.err
	}
	return s
}
