package main

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/libpatchcore/libpatchcore/core"
	"github.com/libpatchcore/libpatchcore/internal/metrics"
)

// ROC plot geometry: a square image with the unit square of (FPR, TPR) mapped onto
// rocArea, FPR to the right and TPR upwards.
const (
	rocSize   = 440
	rocLeft   = 64
	rocRight  = 16
	rocTop    = 36
	rocBottom = 56
)

var (
	rocArea      = image.Rect(rocLeft, rocTop, rocSize-rocRight, rocSize-rocBottom)
	colWhite     = color.RGBA{255, 255, 255, 255}
	colBlack     = color.RGBA{0, 0, 0, 255}
	colGrid      = color.RGBA{228, 228, 228, 255}
	colDiagonal  = color.RGBA{150, 150, 150, 255}
	colCurve     = color.RGBA{31, 119, 180, 255}
	colHighlight = color.RGBA{214, 39, 40, 255}
)

// rocPixel maps a point of the unit square to its pixel in the ROC plot: (0, 0) is the
// bottom-left and (1, 1) the top-right pixel of rocArea.
func rocPixel(fpr, tpr float64) (x, y float64) {
	w, h := float64(rocArea.Dx()-1), float64(rocArea.Dy()-1)
	return float64(rocArea.Min.X) + fpr*w, float64(rocArea.Min.Y) + (1-tpr)*h
}

// rocPlot draws a ROC curve: grid lines every 0.2, the chance diagonal (dashed, grey),
// axes with tick labels, the curve (blue, 3 px) through the points in order, a title and
// the AUROC in the lower right corner.
func rocPlot(r metrics.ROC, auroc float64, title string) (*image.RGBA, error) {
	if len(r.FPR) < 2 || len(r.FPR) != len(r.TPR) {
		return nil, fmt.Errorf("%w: ROC plot needs at least two points with both coordinates, got %d FPR and %d TPR values", core.ErrInvalidArgument, len(r.FPR), len(r.TPR))
	}
	for i := range r.FPR {
		if !(r.FPR[i] >= 0 && r.FPR[i] <= 1 && r.TPR[i] >= 0 && r.TPR[i] <= 1) {
			return nil, fmt.Errorf("%w: ROC point %d (%v, %v) is outside the unit square", core.ErrInvalidArgument, i, r.FPR[i], r.TPR[i])
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, rocSize, rocSize))
	fillRect(img, img.Bounds(), colWhite)

	// Grid, ticks and tick labels.
	for i := 0; i <= 5; i++ {
		v := float64(i) / 5
		label := fmt.Sprintf("%.1f", v)
		x, _ := rocPixel(v, 0)
		_, y := rocPixel(0, v)
		xi, yi := int(math.Round(x)), int(math.Round(y))
		fillRect(img, image.Rect(xi, rocArea.Min.Y, xi+1, rocArea.Max.Y), colGrid)
		fillRect(img, image.Rect(rocArea.Min.X, yi, rocArea.Max.X, yi+1), colGrid)
		fillRect(img, image.Rect(xi, rocArea.Max.Y, xi+1, rocArea.Max.Y+5), colBlack)
		fillRect(img, image.Rect(rocArea.Min.X-5, yi, rocArea.Min.X, yi+1), colBlack)
		drawText(img, xi-textWidth(label, 1)/2, rocArea.Max.Y+8, label, colBlack, 1)
		drawText(img, rocArea.Min.X-8-textWidth(label, 1), yi-textHeight(1)/2, label, colBlack, 1)
	}

	// Chance diagonal, dashed.
	x0, y0 := rocPixel(0, 0)
	x1, y1 := rocPixel(1, 1)
	drawLine(img, x0, y0, x1, y1, 0, 6, colDiagonal)

	// Axes: the left and bottom edges of the plot area.
	fillRect(img, image.Rect(rocArea.Min.X-1, rocArea.Min.Y, rocArea.Min.X, rocArea.Max.Y+1), colBlack)
	fillRect(img, image.Rect(rocArea.Min.X-1, rocArea.Max.Y, rocArea.Max.X, rocArea.Max.Y+1), colBlack)

	// The curve.
	for i := 1; i < len(r.FPR); i++ {
		ax, ay := rocPixel(r.FPR[i-1], r.TPR[i-1])
		bx, by := rocPixel(r.FPR[i], r.TPR[i])
		drawLine(img, ax, ay, bx, by, 1, 0, colCurve)
	}

	// Labels.
	drawText(img, (rocSize-textWidth(title, 2))/2, 10, title, colBlack, 2)
	xl := "false positive rate"
	drawText(img, rocArea.Min.X+(rocArea.Dx()-textWidth(xl, 2))/2, rocArea.Max.Y+24, xl, colBlack, 2)
	yl := "true positive rate"
	drawTextUp(img, 8, rocArea.Min.Y+(rocArea.Dy()+textWidth(yl, 2))/2, yl, colBlack, 2)
	a := fmt.Sprintf("AUROC = %.3f", auroc)
	drawText(img, rocArea.Max.X-8-textWidth(a, 2), rocArea.Max.Y-8-textHeight(2), a, colHighlight, 2)
	return img, nil
}

// drawLine draws the segment (x0, y0)–(x1, y1) by stamping a (2·radius+1)-pixel square at
// points half a pixel apart. dash > 0 draws dash pixels, skips dash pixels, and so on.
func drawLine(img *image.RGBA, x0, y0, x1, y1 float64, radius, dash int, c color.RGBA) {
	length := math.Hypot(x1-x0, y1-y0)
	steps := int(math.Ceil(2*length)) + 1
	for s := 0; s <= steps; s++ {
		t := float64(s) / float64(steps)
		if dash > 0 && int(t*length)/dash%2 == 1 {
			continue
		}
		x := int(math.Round(x0 + t*(x1-x0)))
		y := int(math.Round(y0 + t*(y1-y0)))
		fillRect(img, image.Rect(x-radius, y-radius, x+radius+1, y+radius+1), c)
	}
}
