package metricsdoc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDocumentedAndScraped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.md")
	page := "| name | type |\n| --- | --- |\n| `x_a_total` | counter |\n| `x_b` | gauge |\n| `y_c` | gauge |\n"
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Documented(t, path, "x_"); !slices.Equal(got, []string{"x_a_total", "x_b"}) {
		t.Errorf("Documented = %v", got)
	}
	body := "# HELP x_b b\n# TYPE x_b gauge\nx_b 0\n# TYPE x_a_total counter\nx_a_total 1\n# TYPE y_c gauge\n"
	if got := Scraped(body, "x_"); !slices.Equal(got, []string{"x_a_total", "x_b"}) {
		t.Errorf("Scraped = %v", got)
	}
	Check(t, body, path, "x_", 2)
}
