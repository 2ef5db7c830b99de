package main

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

// plotPixel maps unit-square coordinates to the ROC plot's pixels, written out
// independently: the plot area spans x = 64 … 423 and y = 36 … 383 (inclusive) in a
// 440×440 image, TPR growing upwards.
func plotPixel(fpr, tpr float64) (int, int) {
	return int(math.Round(64 + fpr*359)), int(math.Round(36 + (1-tpr)*347))
}

func TestROCPlotRendersKnownCurve(t *testing.T) {
	r := metrics.ROC{FPR: []float64{0, 0.25, 1}, TPR: []float64{0, 0.75, 1}}
	img, err := rocPlot(r, 0.875, "roc test")
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 440, 440) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	at := func(fpr, tpr float64) color.RGBA {
		x, y := plotPixel(fpr, tpr)
		return img.RGBAAt(x, y)
	}
	// On the curve: both segments, their ends and points along them.
	for _, p := range [][2]float64{{0, 0}, {0.125, 0.375}, {0.25, 0.75}, {0.5, 0.8333333}, {0.625, 0.875}, {1, 1}} {
		if c := at(p[0], p[1]); c != colCurve {
			t.Errorf("curve point %v: pixel %v, want the curve colour", p, c)
		}
	}
	// Off the curve, the diagonal, the grid and the text: background.
	for _, p := range [][2]float64{{0.9, 0.3}, {0.1, 0.9}, {0.7, 0.5}, {0.3, 0.1}} {
		if c := at(p[0], p[1]); c != colWhite {
			t.Errorf("empty point %v: pixel %v, want white", p, c)
		}
	}
	// Grid line at 0.6 (a vertical line through a point between curve and diagonal).
	if c := at(0.6, 0.7); c != colGrid {
		t.Errorf("grid at FPR 0.6: %v", c)
	}
	// The diagonal is dashed: about half its pixels carry its colour.
	diag := 0
	for i := 0; i <= 100; i++ {
		v := 0.1 + 0.8*float64(i)/100
		if at(v, v) == colDiagonal {
			diag++
		}
	}
	if diag < 30 || diag > 70 {
		t.Errorf("%d of 101 diagonal samples are dashed-line pixels, want about half", diag)
	}
	// Axes: the column left of and the row below the plot area are black.
	if c := img.RGBAAt(63, 200); c != colBlack {
		t.Errorf("y axis pixel %v", c)
	}
	if c := img.RGBAAt(250, 384); c != colBlack {
		t.Errorf("x axis pixel %v", c)
	}
	// The AUROC text is the only red, and its ink fills exactly its box: 13 glyphs at
	// scale 2 (13·12 − 2 = 154 px wide, 14 px high), right-aligned 8 px inside the area.
	box := image.Rectangle{Min: image.Pt(424-8-154, 384-8-14), Max: image.Pt(424-8, 384-8)}
	ink := image.Rectangle{Min: image.Pt(1e9, 1e9)}
	for y := 0; y < 440; y++ {
		for x := 0; x < 440; x++ {
			if img.RGBAAt(x, y) == colHighlight {
				ink.Min.X, ink.Min.Y = min(ink.Min.X, x), min(ink.Min.Y, y)
				ink.Max.X, ink.Max.Y = max(ink.Max.X, x+1), max(ink.Max.Y, y+1)
			}
		}
	}
	if ink != box {
		t.Errorf("AUROC text ink spans %v, want %v", ink, box)
	}
}

func TestROCPlotRejectsBadCurves(t *testing.T) {
	bad := []metrics.ROC{
		{FPR: []float64{0}, TPR: []float64{0}},
		{FPR: []float64{0, 1}, TPR: []float64{0}},
		{FPR: []float64{0, 1.5}, TPR: []float64{0, 1}},
		{FPR: []float64{0, math.NaN()}, TPR: []float64{0, 1}},
	}
	for i, r := range bad {
		if _, err := rocPlot(r, 0.5, "x"); err == nil {
			t.Errorf("curve %d accepted", i)
		}
	}
}

// inkPattern returns the w×h top-left pixels of img as rows of '#' (non-white) and '.'.
func inkPattern(img *image.RGBA, w, h int) string {
	var b strings.Builder
	for y := range h {
		for x := range w {
			if img.RGBAAt(x, y) == colWhite {
				b.WriteByte('.')
			} else {
				b.WriteByte('#')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestFont(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 12, 8))
	fillRect(img, img.Bounds(), colWhite)
	drawText(img, 0, 0, "l7", colBlack, 1) // lower case is drawn as upper case
	want := "" +
		"#.....#####.\n" +
		"#.........#.\n" +
		"#........#..\n" +
		"#.......#...\n" +
		"#......#....\n" +
		"#......#....\n" +
		"#####..#....\n" +
		"............\n"
	if got := inkPattern(img, 12, 8); got != want {
		t.Errorf("drawText(\"l7\"):\n%swant\n%s", got, want)
	}
	if w := textWidth("l7", 1); w != 11 {
		t.Errorf("textWidth = %d, want 11", w)
	}

	// Scale 2: each cell becomes 2×2.
	img2 := image.NewRGBA(image.Rect(0, 0, 4, 4))
	fillRect(img2, img2.Bounds(), colWhite)
	drawText(img2, 0, 0, "L", colBlack, 2)
	if got := inkPattern(img2, 4, 4); got != "##..\n##..\n##..\n##..\n" {
		t.Errorf("scaled L corner:\n%s", got)
	}

	// Rotated a quarter turn counter-clockwise: L's stem lies along the bottom, its foot
	// rises on the right.
	img3 := image.NewRGBA(image.Rect(0, 0, 8, 6))
	fillRect(img3, img3.Bounds(), colWhite)
	drawTextUp(img3, 0, 6, "L", colBlack, 1)
	wantUp := "" +
		"........\n" +
		"......#.\n" +
		"......#.\n" +
		"......#.\n" +
		"......#.\n" +
		"#######.\n"
	if got := inkPattern(img3, 8, 6); got != wantUp {
		t.Errorf("drawTextUp(\"L\"):\n%swant\n%s", got, wantUp)
	}
	// Unknown characters draw as '?'.
	a := image.NewRGBA(image.Rect(0, 0, 5, 7))
	b := image.NewRGBA(image.Rect(0, 0, 5, 7))
	drawText(a, 0, 0, "€", colBlack, 1)
	drawText(b, 0, 0, "?", colBlack, 1)
	if string(a.Pix) != string(b.Pix) {
		t.Error("an unknown rune is not drawn as '?'")
	}
}
