package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// isTerminal reports whether f is a character device (a terminal; /dev/null also
// qualifies, which is harmless for progress output).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress reports the advance of a long loop over images: on a terminal as a bar redrawn
// in place with rate and ETA, otherwise as plain log lines at every tenth of the work.
// A nil *progress reports nothing.
type progress struct {
	w       io.Writer
	label   string
	total   int
	bar     bool
	now     func() time.Time
	start   time.Time
	tenths  int // log mode: tenths of the total already reported
	lastLen int // bar mode: length of the line last drawn
}

// newProgress starts reporting total units of work labelled label on w.
func newProgress(w io.Writer, label string, total int, bar bool) *progress {
	return newProgressClock(w, label, total, bar, time.Now)
}

// newProgressClock is newProgress with an injectable clock.
func newProgressClock(w io.Writer, label string, total int, bar bool, now func() time.Time) *progress {
	return &progress{w: w, label: label, total: total, bar: bar, now: now, start: now()}
}

// update reports that done of total units are finished.
func (p *progress) update(done int) {
	if p == nil || p.total <= 0 {
		return
	}
	done = min(max(done, 0), p.total)
	elapsed := p.now().Sub(p.start).Seconds()
	rate, eta := "", ""
	if elapsed > 0 && done > 0 {
		r := float64(done) / elapsed
		rate = fmt.Sprintf("%.1f img/s", r)
		eta = formatDuration(time.Duration(float64(p.total-done) / r * float64(time.Second)))
	}
	if p.bar {
		const width = 30
		fill := width * done / p.total
		line := fmt.Sprintf("%s [%s%s] %d/%d", p.label, strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, p.total)
		if rate != "" {
			line += "  " + rate + "  ETA " + eta
		}
		pad := max(p.lastLen-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.lastLen = len(line)
		if done == p.total {
			fmt.Fprintln(p.w)
		}
		return
	}
	tenths := 10 * done / p.total
	if tenths <= p.tenths {
		return
	}
	p.tenths = tenths
	line := fmt.Sprintf("%s: %d/%d images (%d%%)", p.label, done, p.total, 100*done/p.total)
	if rate != "" {
		line += ", " + rate
		if done < p.total {
			line += ", ETA " + eta
		}
	}
	fmt.Fprintln(p.w, line)
}

// formatDuration prints d rounded to seconds as M:SS, or H:MM:SS from one hour.
func formatDuration(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
