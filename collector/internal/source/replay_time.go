package source

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Unix time cells are told apart by magnitude: below 1e11 a number is
// seconds (1e11 s is the year 5138), below 1e14 milliseconds, below 1e17
// microseconds, and nanoseconds above.
const (
	maxUnixSeconds = 1e11
	maxUnixMillis  = 1e14
	maxUnixMicros  = 1e17
)

// timeLayout is a textual time format of replay files. Layouts without a
// zone are read as UTC; a fraction of a second after the seconds is
// accepted by every layout with seconds.
type timeLayout struct {
	layout   string
	dateOnly bool
}

// timeLayouts are tried in order, so that the more specific come first.
var timeLayouts = [...]timeLayout{
	{time.RFC3339Nano, false},            // 2025-11-28T14:30:00.123Z, 2025-11-28T09:30:00-05:00
	{"2006-01-02T15:04:05", false},       // ISO 8601 without a zone
	{"2006-01-02 15:04:05Z07:00", false}, // as some databases export it
	{"2006-01-02 15:04:05", false},
	{"2006-01-02T15:04", false},
	{"2006-01-02 15:04", false},
	{"2006-01-02", true},
	{"Jan 2 2006 15:04:05", false},
	{"Jan 2 2006 15:04", false},
	{"Jan 2 2006", true},
	{"Jan 2, 2006", true},
}

// errBadTime is the cause of every time cell refused.
var errBadTime = errors.New("bad time")

// timeParser parses time cells. It remembers the layout that matched last,
// since a file uses one format throughout. It is not safe for concurrent
// use.
type timeParser struct{ last int }

// parse returns the time s names, in Unix ms, and whether s is a date
// without a time of day.
func (p *timeParser) parse(s string) (ms int64, dateOnly bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false, fmt.Errorf("%w: empty", errBadTime)
	}
	if isUnixNumber(s) {
		ms, err := parseUnix(s)
		return ms, false, err
	}
	for i := range timeLayouts {
		l := timeLayouts[(p.last+i)%len(timeLayouts)]
		t, err := time.Parse(l.layout, s)
		if err != nil {
			continue
		}
		p.last = (p.last + i) % len(timeLayouts)
		if ms := t.UnixMilli(); ms >= 0 {
			return ms, l.dateOnly, nil
		}
		return 0, false, fmt.Errorf("%w %q: before 1970", errBadTime, clipCell(s))
	}
	return 0, false, fmt.Errorf("%w %q: want RFC 3339, 2006-01-02, 2006-01-02 15:04:05, Jan 2 2006, or Unix seconds or milliseconds", errBadTime, clipCell(s))
}

// isUnixNumber reports whether s is digits with at most one decimal point
// between digits.
func isUnixNumber(s string) bool {
	intPart, frac, hasDot := strings.Cut(s, ".")
	return allDigits(intPart) && (!hasDot || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseUnix converts a Unix time of any of the four units to ms, dropping
// anything finer than a millisecond.
func parseUnix(s string) (int64, error) {
	intPart, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: out of range", errBadTime, clipCell(s))
	}
	switch {
	case n < maxUnixSeconds:
		ms := n * 1000
		if frac != "" {
			frac = (frac + "000")[:3]
			f, _ := strconv.ParseInt(frac, 10, 64) // three digits
			ms += f
		}
		return ms, nil
	case n < maxUnixMillis:
		return n, nil
	case n < maxUnixMicros:
		return n / 1e3, nil
	default:
		return n / 1e6, nil
	}
}

// clipCell keeps a cell short inside error messages.
func clipCell(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
