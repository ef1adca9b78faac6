//go:build linux && amd64

package procfs

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// lineIter walks data line by line, splitting at '\n'. A final line without
// a trailing newline is still returned; the empty remainder after a final
// newline is not.
type lineIter struct {
	data []byte
	n    int // 1-based number of the line last returned
}

// next returns the next line without its '\n', and false when done.
func (it *lineIter) next() (string, bool) {
	if len(it.data) == 0 {
		return "", false
	}
	it.n++
	i := bytes.IndexByte(it.data, '\n')
	if i < 0 {
		line := string(it.data)
		it.data = nil
		return line, true
	}
	line := string(it.data[:i])
	it.data = it.data[i+1:]
	return line, true
}

// clip shortens s for inclusion in an error message so that garbage input
// cannot produce enormous errors.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// nextField skips leading spaces and returns the following space-delimited
// token and the remainder (which starts at the delimiting space, if any).
func nextField(s string) (tok, rest string) {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' {
		j++
	}
	return s[i:j], s[j:]
}

// splitKV splits a "Key:<ws>value" line at the first ':' and trims spaces
// and tabs around the key and the value.
func splitKV(line string) (key, val string, ok bool) {
	i := strings.IndexByte(line, ':')
	if i < 0 {
		return "", "", false
	}
	return trimWS(line[:i]), trimWS(line[i+1:]), true
}

// trimWS trims ASCII spaces and tabs from both ends of s.
func trimWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseUint parses s in the given base as an unsigned number of bitSize
// bits, rejecting signs and empty strings, and names field in the error.
func parseUint(field, s string, base, bitSize int) (uint64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%s: invalid number %q", field, clip(s))
	}
	v, err := strconv.ParseUint(s, base, bitSize)
	if err != nil {
		return 0, fmt.Errorf("%s: invalid number %q", field, clip(s))
	}
	return v, nil
}

// parseInt parses s as a signed decimal of bitSize bits, naming field in
// the error.
func parseInt(field, s string, bitSize int) (int64, error) {
	if s == "" || s[0] == '+' {
		return 0, fmt.Errorf("%s: invalid number %q", field, clip(s))
	}
	v, err := strconv.ParseInt(s, 10, bitSize)
	if err != nil {
		return 0, fmt.Errorf("%s: invalid number %q", field, clip(s))
	}
	return v, nil
}
