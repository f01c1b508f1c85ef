package main

import (
	"fmt"
	"slices"
	"time"
)

// A sample is one figure measured in several runs. These machines are
// noisy (a run can read 15% off the next), so figures are reported as the
// median and the range, and ratios are taken within each run (its two
// sides measured back to back) before the median.
type sample []float64

func (s sample) median() float64 {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

// rate formats a sample of rates: "3,300/s (2,900–3,600)".
func (s sample) rate() string {
	if len(s) == 1 {
		return thousands(s[0]) + "/s"
	}
	return fmt.Sprintf("%s/s (%s–%s)", thousands(s.median()), thousands(slices.Min(s)), thousands(slices.Max(s)))
}

// ratio formats a sample of ratios: "0.35 (0.31–0.39)".
func (s sample) ratio() string {
	if len(s) == 1 {
		return fmt.Sprintf("%.2f", s[0])
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.median(), slices.Min(s), slices.Max(s))
}

// micros formats a sample of durations in seconds as microseconds.
func (s sample) micros() string {
	us := func(v float64) string {
		return (time.Duration(v * float64(time.Second))).Round(time.Microsecond).String()
	}
	if len(s) == 1 {
		return us(s[0])
	}
	return fmt.Sprintf("%s (%s–%s)", us(s.median()), us(slices.Min(s)), us(slices.Max(s)))
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
