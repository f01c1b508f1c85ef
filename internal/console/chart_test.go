package console

import (
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/queue"
)

// Bars stack sent, deferred and failed from the baseline, the tallest
// minute reaching the top, and a lone message among many still shows.
func TestDrawChart(t *testing.T) {
	minutes := make([]queue.Bucket, 60)
	for i := range minutes {
		minutes[i] = queue.Bucket{Start: time.Unix(int64(i*60), 0).UTC(), Counts: map[queue.Status]int64{}}
	}
	minutes[10].Counts[queue.StatusSent] = 1000
	minutes[59].Counts[queue.StatusSent] = 500
	minutes[59].Counts[queue.StatusFailed] = 1
	c := drawChart(minutes, catalogue["en"])
	if len(c.Bars) != 60 || c.Max != 1000 {
		t.Fatalf("%d bars, max %d", len(c.Bars), c.Max)
	}
	if p := c.Bars[10].Parts; len(p) != 1 || p[0].Y != 10 || p[0].Y+p[0].H != chartBottom {
		t.Errorf("tallest bar %+v", p)
	}
	last := c.Bars[59].Parts
	if len(last) != 2 || last[0].Class != "sent" || last[1].Class != "failed" || last[1].H != 1 || last[1].Y+last[1].H != last[0].Y {
		t.Errorf("last minute %+v", last)
	}
	if len(c.Bars[0].Parts) != 0 || c.Bars[59].Label != "00:59: Sent 500, Deferred 0, Failed 1" {
		t.Errorf("empty minute %+v, label %q", c.Bars[0].Parts, c.Bars[59].Label)
	}
}

// On an Arabic page the newest minute is drawn on the left.
func TestDrawChartRightToLeft(t *testing.T) {
	minutes := make([]queue.Bucket, 60)
	for i := range minutes {
		minutes[i] = queue.Bucket{Counts: map[queue.Status]int64{}}
	}
	ltr, rtl := drawChart(minutes, catalogue["en"]), drawChart(minutes, catalogue["ar"])
	if ltr.Bars[59].X <= ltr.Bars[0].X || rtl.Bars[59].X >= rtl.Bars[0].X || rtl.Bars[59].X >= 10 {
		t.Errorf("newest bar at %d (ltr) and %d (rtl)", ltr.Bars[59].X, rtl.Bars[59].X)
	}
	if rtl.Ticks[4].Anchor != "end" || rtl.Ticks[4].X != 0 {
		t.Errorf("rtl's now label %+v", rtl.Ticks[4])
	}
}
