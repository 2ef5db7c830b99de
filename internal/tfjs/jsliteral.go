package tfjs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// maxLiteralDepth bounds the nesting of objects and arrays in a parsed literal, so a
// hostile file cannot exhaust the stack.
const maxLiteralDepth = 256

// exportRe finds the CommonJS assignment `x.exports=` that a bundled model file uses to
// publish its payload.
var exportRe = regexp.MustCompile(`[A-Za-z_$][\w$]*\.exports\s*=\s*`)

// ExtractExport finds the first `<name>.exports = <literal>` in a bundled JavaScript
// module whose right-hand side is an object, array or string literal and returns the
// parsed value. Such bundles (browserify-style wrappers around a model.json or a base64
// weight shard) also contain `module.exports = e()`; assignments of anything but a
// literal are skipped.
//
// The literal is JavaScript, not JSON: unquoted keys, single-quoted strings, numbers
// such as `.5`, and the minifier's `!0`/`!1` for true/false are accepted. Objects become
// map[string]any, arrays []any, numbers float64, strings string, booleans bool and
// null/undefined nil.
func ExtractExport(src []byte) (any, error) {
	s := string(src)
	for _, loc := range exportRe.FindAllStringIndex(s, -1) {
		if loc[1] >= len(s) {
			break
		}
		switch s[loc[1]] {
		case '{', '[', '"', '\'':
			p := &litParser{s: s, pos: loc[1]}
			v, err := p.value(0)
			if err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: no `exports = <literal>` assignment found in the JavaScript module", errs.ErrFormat)
}

// litParser parses one JavaScript literal starting at pos.
type litParser struct {
	s   string
	pos int
}

func (p *litParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: JavaScript literal at offset %d: %s", errs.ErrFormat, p.pos, fmt.Sprintf(format, args...))
}

func (p *litParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *litParser) value(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, p.errorf("nested deeper than %d levels", maxLiteralDepth)
	}
	p.skipSpace()
	if p.pos >= len(p.s) {
		return nil, p.errorf("unexpected end of input")
	}
	c := p.s[p.pos]
	switch {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"' || c == '\'':
		return p.str()
	case c == '!':
		// The minifier writes true as !0 and false as !1.
		if p.pos+1 < len(p.s) && (p.s[p.pos+1] == '0' || p.s[p.pos+1] == '1') {
			v := p.s[p.pos+1] == '0'
			p.pos += 2
			return v, nil
		}
		return nil, p.errorf("unsupported expression after '!'")
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	}
	for _, kw := range []struct {
		word string
		val  any
	}{{"true", true}, {"false", false}, {"null", nil}, {"undefined", nil}, {"void 0", nil}} {
		if strings.HasPrefix(p.s[p.pos:], kw.word) && !isIdentByte(p.at(p.pos+len(kw.word))) {
			p.pos += len(kw.word)
			return kw.val, nil
		}
	}
	return nil, p.errorf("unexpected character %q", c)
}

func (p *litParser) at(i int) byte {
	if i < len(p.s) {
		return p.s[i]
	}
	return 0
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func (p *litParser) object(depth int) (any, error) {
	p.pos++ // '{'
	obj := map[string]any{}
	for {
		p.skipSpace()
		if p.at(p.pos) == '}' {
			p.pos++
			return obj, nil
		}
		var key string
		switch c := p.at(p.pos); {
		case c == '"' || c == '\'':
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			key = k
		case isIdentByte(c):
			start := p.pos
			for isIdentByte(p.at(p.pos)) {
				p.pos++
			}
			key = p.s[start:p.pos]
		default:
			return nil, p.errorf("expected an object key, found %q", c)
		}
		p.skipSpace()
		if p.at(p.pos) != ':' {
			return nil, p.errorf("expected ':' after key %q", key)
		}
		p.pos++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		p.skipSpace()
		switch p.at(p.pos) {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return obj, nil
		default:
			return nil, p.errorf("expected ',' or '}' in object")
		}
	}
}

func (p *litParser) array(depth int) (any, error) {
	p.pos++ // '['
	arr := []any{}
	for {
		p.skipSpace()
		if p.at(p.pos) == ']' {
			p.pos++
			return arr, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		switch p.at(p.pos) {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return arr, nil
		default:
			return nil, p.errorf("expected ',' or ']' in array")
		}
	}
}

func (p *litParser) number() (any, error) {
	start := p.pos
	if c := p.at(p.pos); c == '-' || c == '+' {
		p.pos++
	}
	digits := 0
	for c := p.at(p.pos); c >= '0' && c <= '9'; c = p.at(p.pos) {
		p.pos++
		digits++
	}
	if p.at(p.pos) == '.' {
		p.pos++
		for c := p.at(p.pos); c >= '0' && c <= '9'; c = p.at(p.pos) {
			p.pos++
			digits++
		}
	}
	if digits == 0 {
		p.pos = start
		return nil, p.errorf("malformed number")
	}
	if c := p.at(p.pos); c == 'e' || c == 'E' {
		p.pos++
		if c := p.at(p.pos); c == '-' || c == '+' {
			p.pos++
		}
		expDigits := 0
		for c := p.at(p.pos); c >= '0' && c <= '9'; c = p.at(p.pos) {
			p.pos++
			expDigits++
		}
		if expDigits == 0 {
			p.pos = start
			return nil, p.errorf("malformed exponent")
		}
	}
	if isIdentByte(p.at(p.pos)) {
		p.pos = start
		return nil, p.errorf("unsupported numeric literal")
	}
	v, err := strconv.ParseFloat(p.s[start:p.pos], 64)
	if err != nil {
		p.pos = start
		return nil, p.errorf("number %q: %v", p.s[start:p.pos], err)
	}
	return v, nil
}

func (p *litParser) str() (string, error) {
	quote := p.s[p.pos]
	p.pos++
	var sb strings.Builder
	for {
		if p.pos >= len(p.s) {
			return "", p.errorf("unterminated string")
		}
		c := p.s[p.pos]
		switch {
		case c == quote:
			p.pos++
			return sb.String(), nil
		case c == '\n' || c == '\r':
			return "", p.errorf("line break inside a string")
		case c != '\\':
			// Copy the run of ordinary bytes in one go (base64 payloads are megabytes).
			end := p.pos
			for end < len(p.s) && p.s[end] != quote && p.s[end] != '\\' && p.s[end] != '\n' && p.s[end] != '\r' {
				end++
			}
			sb.WriteString(p.s[p.pos:end])
			p.pos = end
		default:
			if err := p.escape(&sb); err != nil {
				return "", err
			}
		}
	}
}

// escape decodes the escape sequence at p.pos (which holds the backslash).
func (p *litParser) escape(sb *strings.Builder) error {
	p.pos++
	if p.pos >= len(p.s) {
		return p.errorf("unterminated escape")
	}
	c := p.s[p.pos]
	p.pos++
	simple := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', 'b': '\b', 'f': '\f', 'v': '\v', '0': 0}
	switch {
	case c == 'x' || c == 'u':
		n := 2
		if c == 'u' {
			n = 4
		}
		if p.pos+n > len(p.s) {
			return p.errorf("truncated \\%c escape", c)
		}
		v, err := strconv.ParseUint(p.s[p.pos:p.pos+n], 16, 32)
		if err != nil {
			return p.errorf("bad \\%c escape %q", c, p.s[p.pos:p.pos+n])
		}
		p.pos += n
		r := rune(v)
		if c == 'u' && utf16High(r) && strings.HasPrefix(p.s[p.pos:], `\u`) && p.pos+6 <= len(p.s) {
			if lo, err := strconv.ParseUint(p.s[p.pos+2:p.pos+6], 16, 32); err == nil && utf16Low(rune(lo)) {
				r = 0x10000 + (r-0xD800)<<10 + (rune(lo) - 0xDC00)
				p.pos += 6
			}
		}
		if !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		sb.WriteRune(r)
	case simple[c] != 0 || c == '0':
		sb.WriteByte(simple[c])
	case c == '\n':
		// A line continuation contributes nothing.
	default:
		sb.WriteByte(c) // \" \' \\ \/ and any other character stand for themselves
	}
	return nil
}

func utf16High(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16Low(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }
