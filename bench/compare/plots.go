package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Colors and glyphs per contender, the same in every plot.
var styles = map[string]struct {
	c     color.Color
	glyph draw.GlyphDrawer
	dash  []vg.Length
}{
	"mp local":                     {color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 255}, draw.CircleGlyph{}, nil},
	"mp cluster":                   {color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 255}, draw.SquareGlyph{}, nil},
	"hand-written":                 {color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 255}, draw.TriangleGlyph{}, nil},
	"conc iter.Map":                {color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 255}, draw.TriangleGlyph{}, nil},
	"errgroup, goroutine per item": {color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 255}, draw.PyramidGlyph{}, nil},
	"errgroup, chunked":            {color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 255}, draw.RingGlyph{}, nil},
	"pond":                         {color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 255}, draw.CrossGlyph{}, nil},
	"ideal":                        {color.Gray{Y: 0x80}, nil, []vg.Length{vg.Points(4), vg.Points(3)}},
}

func addSeries(p *plot.Plot, name string, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	st := styles[name]
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = st.c
	l.Width = vg.Points(1.5)
	l.Dashes = st.dash
	p.Add(l)
	if st.glyph == nil {
		p.Legend.Add(name, l)
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	s.Color = st.c
	s.Shape = st.glyph
	s.Radius = vg.Points(3)
	p.Add(s)
	p.Legend.Add(name, l, s)
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	return p
}

// plotSpeedup writes speedup.png: π speed-up over serial Go by workers.
func plotSpeedup(dir string, pts []speedupPoint, samples, batches int, machine string) (string, error) {
	p := newPlot(fmt.Sprintf("π, %s samples in %d batches: speed-up over serial Go\n%s", fmtCount(samples), batches, machine),
		"workers (goroutines, or worker processes for mp cluster)", "speed-up (serial time / time)")
	var ideal plotter.XYs
	maxW, maxY := 0, 0.0
	for _, pt := range pts {
		ideal = append(ideal, plotter.XY{X: float64(pt.workers), Y: math.Min(float64(pt.workers), float64(runtime.NumCPU()))})
		maxW = max(maxW, pt.workers)
	}
	if err := addSeries(p, "ideal", ideal); err != nil {
		return "", err
	}
	for _, name := range sweepNames {
		var xys plotter.XYs
		for _, pt := range pts {
			xys = append(xys, plotter.XY{X: float64(pt.workers), Y: pt.speedup[name]})
			maxY = max(maxY, pt.speedup[name])
		}
		if err := addSeries(p, name, xys); err != nil {
			return "", err
		}
	}
	p.X.Min, p.X.Max = 0.5, float64(maxW)+0.5
	p.Y.Min, p.Y.Max = 0, math.Max(maxY, float64(runtime.NumCPU()))*1.25
	var ticks []plot.Tick
	for _, pt := range pts {
		ticks = append(ticks, plot.Tick{Value: float64(pt.workers), Label: fmt.Sprint(pt.workers)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	file := filepath.Join(dir, "speedup.png")
	return file, p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// plotPerItem writes per_item.png: the cost per item of a Map of trivial by
// input size, log-log.
func plotPerItem(dir string, pts []perItemPoint, names []string, machine string) (string, error) {
	// A long Y label on a log scale makes gonum/plot shrink the data area:
	// keep it short.
	p := newPlot("Map of x*2+1: wall time per item, by input size\n"+machine,
		"items per Map (log)", "ns/item (log)")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var ticks []plot.Tick
	for _, pt := range pts {
		ticks = append(ticks, plot.Tick{Value: float64(pt.size), Label: shortCount(pt.size)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.XOffs = -vg.Points(6)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, name := range names {
		var xys plotter.XYs
		for _, pt := range pts {
			if v, ok := pt.ns[name]; ok && v > 0 {
				xys = append(xys, plotter.XY{X: float64(pt.size), Y: v})
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		if err := addSeries(p, name, xys); err != nil {
			return "", err
		}
	}
	if !math.IsInf(lo, 0) {
		p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
		p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi))+1) // room for the legend
	}
	if len(pts) > 0 {
		p.X.Min = float64(pts[0].size) / 1.5
		p.X.Max = float64(pts[len(pts)-1].size) * 1.5
	}
	file := filepath.Join(dir, "per_item.png")
	return file, p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// shortCount writes 1000 as 1k, 1000000 as 1M.
func shortCount(n int) string {
	switch {
	case n >= 1e9 && n%1e9 == 0:
		return fmt.Sprintf("%dG", n/1e9)
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%dM", n/1e6)
	case n >= 1e3 && n%1e3 == 0:
		return fmt.Sprintf("%dk", n/1e3)
	}
	return fmt.Sprint(n)
}

func ensureDir(dir string) error { return os.MkdirAll(dir, 0o755) }
