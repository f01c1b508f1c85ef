package console

import (
	"strconv"

	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/queue"
)

// chart is the last hour's outcomes drawn as stacked bars, one a minute,
// laid out here so the page needs no script: the template only writes the
// rectangles out.
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int64
	Ticks         []tick
}

type bar struct {
	X, Width int
	Parts    []barPart
	Label    string // "sent 3, deferred 1, failed 0" for the minute's <title>
}

type barPart struct {
	Class string // sent, deferred, failed: the stylesheet's colours
	Y, H  int
}

type tick struct {
	X      int
	Label  string
	Anchor string // the edges' labels run inwards, so none is cut off
}

const (
	chartWidth  = 600
	chartHeight = 160
	chartBottom = 140 // the bars' baseline; below it the minute labels
)

// series are the outcomes drawn, bottom first.
var series = []queue.Status{queue.StatusSent, queue.StatusDeferred, queue.StatusFailed}

// drawChart lays out minutes (oldest first, the last the current one).
func drawChart(minutes []queue.Bucket, loc lang.Words) chart {
	c := chart{Width: chartWidth, Height: chartHeight}
	for _, b := range minutes {
		var sum int64
		for _, s := range series {
			sum += b.Counts[s]
		}
		c.Max = max(c.Max, sum)
	}
	n := max(len(minutes), 1)
	slot := chartWidth / n
	scale := max(c.Max, 1)
	for i, b := range minutes {
		br := bar{X: i * slot, Width: max(slot-2, 1)}
		y := chartBottom
		label := ""
		for _, s := range series {
			v := b.Counts[s]
			if label != "" {
				label += ", "
			}
			label += loc.Text("count."+string(s)) + " " + strconv.FormatInt(v, 10)
			h := int(v * (chartBottom - 10) / scale)
			if v > 0 && h == 0 {
				h = 1 // a minute with one message among thousands still shows
			}
			if h > 0 {
				y -= h
				br.Parts = append(br.Parts, barPart{Class: string(s), Y: y, H: h})
			}
		}
		br.Label = b.Start.Format("15:04") + ": " + label
		c.Bars = append(c.Bars, br)
	}
	for _, ago := range []int{60, 45, 30, 15, 0} {
		i := n - 1 - ago
		if i < 0 {
			i = 0
		}
		l := loc.Text("chart.now")
		if ago > 0 {
			l = loc.Text("chart.minutesago", ago)
		}
		t := tick{X: i*slot + slot/2, Label: l, Anchor: "middle"}
		switch ago {
		case 60:
			t.X, t.Anchor = 0, "start"
		case 0:
			t.X, t.Anchor = chartWidth, "end"
		}
		c.Ticks = append(c.Ticks, t)
	}
	if loc.Dir == "rtl" {
		// Time runs right to left on an Arabic page: mirror the layout
		// here rather than the drawing in CSS, which would mirror the text.
		for i := range c.Bars {
			c.Bars[i].X = chartWidth - c.Bars[i].X - c.Bars[i].Width
		}
		// The anchors stay: the page's direction, inherited by the
		// text, already reads "start" from the right.
		for i := range c.Ticks {
			c.Ticks[i].X = chartWidth - c.Ticks[i].X
		}
	}
	return c
}
