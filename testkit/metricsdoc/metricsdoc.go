// Package metricsdoc checks a process's /metrics against docs/metrics.md:
// every family the page documents for a prefix is exposed, and nothing is
// exposed that the page does not document. Its functions are safe for
// concurrent use.
package metricsdoc

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Documented returns the metric names of the tables in the Markdown file at
// path that start with prefix, sorted.
func Documented(t testing.TB, path, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"+prefix); ok {
			name, _, _ = strings.Cut(name, "`")
			out = append(out, prefix+name)
		}
	}
	slices.Sort(out)
	return out
}

// Scraped returns the families with prefix in a /metrics answer, sorted.
func Scraped(body, prefix string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "+prefix); ok {
			name, _, _ := strings.Cut(rest, " ")
			out = append(out, prefix+name)
		}
	}
	slices.Sort(out)
	return out
}

// Check fails t unless the families with prefix in body are exactly those
// the file at docPath documents. atLeast guards against a table that was
// not read at all.
func Check(t testing.TB, body, docPath, prefix string, atLeast int) {
	t.Helper()
	doc := Documented(t, docPath, prefix)
	if len(doc) < atLeast {
		t.Fatalf("%s lists %d %s families; the table was not read", docPath, len(doc), prefix)
	}
	got := Scraped(body, prefix)
	for _, name := range doc {
		if !slices.Contains(got, name) {
			t.Errorf("%s is documented but not exposed at start", name)
		}
	}
	for _, name := range got {
		if !slices.Contains(doc, name) {
			t.Errorf("%s is exposed but not in %s", name, docPath)
		}
	}
}
