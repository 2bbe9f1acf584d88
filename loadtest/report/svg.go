package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

var palette = []string{"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// series is one line of a chart.
type series struct {
	name string
	pts  []Point
}

// chart draws one panel at (x0, y0) of size w×h. xf/yf map data to [0,1].
type chart struct {
	title, xlabel, ylabel string
	xlog, ylog            bool
	xticks                []float64
	xtickLabel            func(float64) string
	lines                 []series
}

func (c chart) render(b *strings.Builder, x0, y0, w, h float64, colors map[string]string) {
	const padL, padR, padT, padB = 60, 10, 28, 40
	pw, ph := w-padL-padR, h-padT-padB
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", x0+padL, y0+18, esc(c.title))
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", x0+padL, y0+padT, pw, ph)
	var xs, ys []float64
	for _, l := range c.lines {
		for _, p := range l.pts {
			xs = append(xs, p.X)
			ys = append(ys, p.Y)
		}
	}
	if len(xs) == 0 {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="12" fill="#666">no data</text>`+"\n", x0+padL+10, y0+padT+20)
		return
	}
	xlo, xhi := bounds(xs, c.xlog)
	ylo, yhi := bounds(ys, c.ylog)
	if len(c.xticks) > 0 {
		xlo, xhi = tr(c.xticks[0], c.xlog), tr(c.xticks[len(c.xticks)-1], c.xlog)
	}
	px := func(v float64) float64 { return x0 + padL + (tr(v, c.xlog)-xlo)/(xhi-xlo)*pw }
	py := func(v float64) float64 { return y0 + padT + ph - (tr(v, c.ylog)-ylo)/(yhi-ylo)*ph }
	xt := c.xticks
	if len(xt) == 0 {
		xt = ticks(xlo, xhi, c.xlog)
	}
	for _, t := range xt {
		lab := fmtTick(t)
		if c.xtickLabel != nil {
			lab = c.xtickLabel(t)
		}
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#eee"/><text x="%.1f" y="%.0f" font-size="10" text-anchor="middle">%s</text>`+"\n",
			px(t), px(t), y0+padT, y0+padT+ph, px(t), y0+padT+ph+14, lab)
	}
	for _, t := range ticks(ylo, yhi, c.ylog) {
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" font-size="10" text-anchor="end">%s</text>`+"\n",
			x0+padL, x0+padL+pw, py(t), py(t), x0+padL-4, py(t)+3, fmtTick(t))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="middle">%s</text>`+"\n", x0+padL+pw/2, y0+h-6, esc(c.xlabel))
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="middle" transform="rotate(-90 %.0f %.0f)">%s</text>`+"\n",
		x0+14, y0+padT+ph/2, x0+14, y0+padT+ph/2, esc(c.ylabel))
	for _, l := range c.lines {
		var pts []string
		for _, p := range l.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y)))
		}
		col := colors[l.name]
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", xy[0], xy[1], col)
		}
	}
}

func tr(v float64, lg bool) float64 {
	if lg {
		return math.Log10(math.Max(v, 1e-3))
	}
	return v
}

func bounds(vs []float64, lg bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		lo, hi = math.Min(lo, tr(v, lg)), math.Max(hi, tr(v, lg))
	}
	if lg {
		lo, hi = math.Floor(lo), math.Ceil(hi)
	} else {
		lo = math.Min(lo, 0)
		hi *= 1.05
	}
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

func ticks(lo, hi float64, lg bool) []float64 {
	var out []float64
	if lg {
		for e := lo; e <= hi+1e-9; e++ {
			out = append(out, math.Pow(10, e))
		}
		return out
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/4)))
	for (hi-lo)/step > 8 {
		step *= 2
	}
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// SVG draws three panels: the latency distribution of the fastest fixed
// rate (S3), delivered against offered rate (S2), and broadcast
// deliveries per second against the number of tabs (S4).
func (r *Results) SVG() string {
	peers := r.Peers()
	colors := map[string]string{}
	for i, p := range peers {
		colors[p] = palette[i%len(palette)]
	}
	// Percentile x axis: distance to 100% on a log scale, 1/(1-q).
	lat := chart{title: "S3 latency distribution (highest fixed rate)", xlabel: "percentile", ylabel: "latency ms", xlog: true, ylog: true,
		xticks: []float64{1, 10, 100, 1000, 10000},
		xtickLabel: func(v float64) string {
			return map[float64]string{1: "0", 10: "90", 100: "99", 1000: "99.9", 10000: "99.99"}[v]
		}}
	thr := chart{title: "S2 throughput: delivered vs offered", xlabel: "offered notices/s", ylabel: "deliveries/s"}
	bc := chart{title: "S4 broadcast: deliveries/s vs tabs N", xlabel: "N tabs of one user", ylabel: "deliveries/s", xlog: true}
	for _, p := range peers {
		var best *Run
		var s2, s4 []Point
		for _, x := range r.Runs {
			if x.Peer != p {
				continue
			}
			switch x.Scenario {
			case "S3":
				if best == nil || x.OfferedRate > best.OfferedRate {
					best = &x
				}
			case "S2":
				if x.OfferedRate > 0 {
					s2 = append(s2, Point{X: x.OfferedRate, Y: x.DeliveriesPerSec})
				}
			case "S4":
				if x.ToAll > 0 {
					s4 = append(s4, Point{X: float64(x.Subs), Y: float64(x.Subs) / (x.ToAll / 1000)})
				}
			}
		}
		if best != nil && len(best.Curve) > 0 {
			var pts []Point
			for _, c := range best.Curve {
				if c.X >= 100 {
					continue
				}
				pts = append(pts, Point{X: 1 / (1 - c.X/100), Y: math.Max(c.Y, 0.01)})
			}
			lat.lines = append(lat.lines, series{p, pts})
		}
		if len(s2) > 0 {
			thr.lines = append(thr.lines, series{p, s2})
		}
		if len(s4) > 0 {
			bc.lines = append(bc.lines, series{p, s4})
		}
	}
	const w, h = 1200, 380
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", w, h, w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	lat.render(&b, 0, 0, 400, h-40, colors)
	thr.render(&b, 400, 0, 400, h-40, colors)
	bc.render(&b, 800, 0, 400, h-40, colors)
	var drawn []string
	for _, p := range peers {
		for _, c := range []chart{lat, thr, bc} {
			if slices.ContainsFunc(c.lines, func(s series) bool { return s.name == p }) {
				drawn = append(drawn, p)
				break
			}
		}
	}
	for i, p := range drawn {
		x := 60 + i*180
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d" font-size="12">%s</text>`+"\n", x, h-22, colors[p], x+18, h-17, esc(p))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
