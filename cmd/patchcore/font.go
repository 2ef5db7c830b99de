package main

import (
	"image"
	"image/color"
	"strings"
)

// A tiny hand-drawn 5×7 bitmap font for plot and gallery captions. Each glyph is seven rows
// of five cells, top to bottom, '1' = ink. Lower-case letters are drawn as upper case and
// characters without a glyph as '?'.
const (
	glyphW   = 5
	glyphH   = 7
	glyphGap = 1 // blank columns between glyphs
)

var glyphs = map[rune]string{
	'0': "01110 10001 10011 10101 11001 10001 01110",
	'1': "00100 01100 00100 00100 00100 00100 01110",
	'2': "01110 10001 00001 00010 00100 01000 11111",
	'3': "11111 00010 00100 00010 00001 10001 01110",
	'4': "00010 00110 01010 10010 11111 00010 00010",
	'5': "11111 10000 11110 00001 00001 10001 01110",
	'6': "00110 01000 10000 11110 10001 10001 01110",
	'7': "11111 00001 00010 00100 01000 01000 01000",
	'8': "01110 10001 10001 01110 10001 10001 01110",
	'9': "01110 10001 10001 01111 00001 00010 01100",
	'A': "01110 10001 10001 10001 11111 10001 10001",
	'B': "11110 10001 10001 11110 10001 10001 11110",
	'C': "01110 10001 10000 10000 10000 10001 01110",
	'D': "11100 10010 10001 10001 10001 10010 11100",
	'E': "11111 10000 10000 11110 10000 10000 11111",
	'F': "11111 10000 10000 11110 10000 10000 10000",
	'G': "01110 10001 10000 10111 10001 10001 01111",
	'H': "10001 10001 10001 11111 10001 10001 10001",
	'I': "01110 00100 00100 00100 00100 00100 01110",
	'J': "00111 00010 00010 00010 00010 10010 01100",
	'K': "10001 10010 10100 11000 10100 10010 10001",
	'L': "10000 10000 10000 10000 10000 10000 11111",
	'M': "10001 11011 10101 10101 10001 10001 10001",
	'N': "10001 10001 11001 10101 10011 10001 10001",
	'O': "01110 10001 10001 10001 10001 10001 01110",
	'P': "11110 10001 10001 11110 10000 10000 10000",
	'Q': "01110 10001 10001 10001 10101 10010 01101",
	'R': "11110 10001 10001 11110 10100 10010 10001",
	'S': "01111 10000 10000 01110 00001 00001 11110",
	'T': "11111 00100 00100 00100 00100 00100 00100",
	'U': "10001 10001 10001 10001 10001 10001 01110",
	'V': "10001 10001 10001 10001 10001 01010 00100",
	'W': "10001 10001 10001 10101 10101 10101 01010",
	'X': "10001 10001 01010 00100 01010 10001 10001",
	'Y': "10001 10001 10001 01010 00100 00100 00100",
	'Z': "11111 00001 00010 00100 01000 10000 11111",
	' ': "00000 00000 00000 00000 00000 00000 00000",
	'.': "00000 00000 00000 00000 00000 01100 01100",
	',': "00000 00000 00000 00000 01100 00100 01000",
	'-': "00000 00000 00000 11111 00000 00000 00000",
	'_': "00000 00000 00000 00000 00000 00000 11111",
	'=': "00000 00000 11111 00000 11111 00000 00000",
	':': "00000 01100 01100 00000 01100 01100 00000",
	'/': "00000 00001 00010 00100 01000 10000 00000",
	'(': "00010 00100 01000 01000 01000 00100 00010",
	')': "01000 00100 00010 00010 00010 00100 01000",
	'%': "11000 11001 00010 00100 01000 10011 00011",
	'<': "00010 00100 01000 10000 01000 00100 00010",
	'>': "01000 00100 00010 00001 00010 00100 01000",
	'+': "00000 00100 00100 11111 00100 00100 00000",
	'?': "01110 10001 00001 00010 00100 00000 00100",
}

// glyphInk reports whether cell (col, row) of the glyph for r is inked.
func glyphInk(r rune, col, row int) bool {
	g, ok := glyphs[r]
	if !ok {
		g = glyphs['?']
	}
	return g[row*(glyphW+1)+col] == '1'
}

// textWidth is the width in pixels of s drawn at the given scale.
func textWidth(s string, scale int) int {
	n := len([]rune(s))
	if n == 0 {
		return 0
	}
	return (n*(glyphW+glyphGap) - glyphGap) * scale
}

// textHeight is the height in pixels of a line of text at the given scale.
func textHeight(scale int) int { return glyphH * scale }

// drawText draws s with its top-left corner at (x, y), each font cell scale×scale pixels.
// Pixels outside img are skipped.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA, scale int) {
	for i, r := range []rune(strings.ToUpper(s)) {
		x0 := x + i*(glyphW+glyphGap)*scale
		for row := range glyphH {
			for col := range glyphW {
				if glyphInk(r, col, row) {
					fillRect(img, image.Rect(x0+col*scale, y+row*scale, x0+(col+1)*scale, y+(row+1)*scale), c)
				}
			}
		}
	}
}

// drawTextUp draws s rotated a quarter turn counter-clockwise (reading bottom to top)
// with the bottom-left corner of its first glyph at (x, y).
func drawTextUp(img *image.RGBA, x, y int, s string, c color.RGBA, scale int) {
	for i, r := range []rune(strings.ToUpper(s)) {
		y0 := y - i*(glyphW+glyphGap)*scale
		for row := range glyphH {
			for col := range glyphW {
				if glyphInk(r, col, row) {
					// Glyph column col goes up from y0, glyph row row goes right from x.
					fillRect(img, image.Rect(x+row*scale, y0-(col+1)*scale, x+(row+1)*scale, y0-col*scale), c)
				}
			}
		}
	}
}

// fillRect paints r ∩ img.Bounds() with c.
func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
