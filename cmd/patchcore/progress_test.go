package main

import (
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock for progress.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressLogLines(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var b strings.Builder
	p := newProgressClock(&b, "fit", 20, false, clk.now)
	for done := 1; done <= 20; done++ {
		clk.t = clk.t.Add(2 * time.Second) // 0.5 images per second
		p.update(done)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d log lines, want one per tenth (10):\n%s", len(lines), b.String())
	}
	if want := "fit: 2/20 images (10%), 0.5 img/s, ETA 0:36"; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	if want := "fit: 20/20 images (100%), 0.5 img/s"; lines[9] != want {
		t.Errorf("last line %q, want %q", lines[9], want)
	}
	p.update(20) // a repeated final update prints nothing
	if strings.Count(b.String(), "\n") != 10 {
		t.Error("a repeated update printed again")
	}
}

func TestProgressBar(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var b strings.Builder
	p := newProgressClock(&b, "eval", 4, true, clk.now)
	clk.t = clk.t.Add(time.Second)
	p.update(2)
	clk.t = clk.t.Add(time.Second)
	p.update(4)
	want := "\reval [###############...............] 2/4  2.0 img/s  ETA 0:01" +
		"\reval [##############################] 4/4  2.0 img/s  ETA 0:00\n"
	if b.String() != want {
		t.Errorf("bar output\n%q\nwant\n%q", b.String(), want)
	}
	var nilProgress *progress
	nilProgress.update(3) // reports nothing, must not panic
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0:00",
		59600 * time.Millisecond: "1:00",
		3725 * time.Second:       "1:02:05",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
