package obs_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/obs"
)

// JSON logs carry durations as their String, not as nanoseconds.
func TestJSONDurationsAreStrings(t *testing.T) {
	var buf bytes.Buffer
	log, err := obs.NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "took", 1500*time.Millisecond)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["took"] != "1.5s" {
		t.Errorf("took = %#v, want \"1.5s\"", rec["took"])
	}
}

type Inner struct {
	URL string `envconfig:"REDIS_URL"`
}

type testConfig struct {
	Inner
	Timeout  time.Duration `envconfig:"X_TIMEOUT"`
	Origins  []string      `envconfig:"X_ORIGINS"`
	Secret   string        `envconfig:"JWT_SECRET"`
	Password string        `envconfig:"X_PASSWORD"`
	Empty    string        `envconfig:"X_TOKEN"`
	N        int           `envconfig:"X_N"`
	hidden   int
}

// The configuration is logged field by field under its variable names,
// with secrets masked even when the caller did not redact them.
func TestConfigAttr(t *testing.T) {
	var buf bytes.Buffer
	log, err := obs.NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Inner: Inner{URL: "redis://h:6379/0"}, Timeout: 5 * time.Second, Origins: []string{"a", "b"},
		Secret: "s3cr3t", Password: "pw", N: 3, hidden: 1}
	log.Info("starting", obs.ConfigAttr(cfg))
	if strings.Contains(buf.String(), "s3cr3t") || strings.Contains(buf.String(), `"pw"`) {
		t.Fatalf("secret logged: %s", buf.String())
	}
	var rec struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"REDIS_URL": "redis://h:6379/0", "X_TIMEOUT": "5s", "X_ORIGINS": "a,b",
		"JWT_SECRET": "xxxxx", "X_PASSWORD": "xxxxx", "X_TOKEN": "", "X_N": float64(3),
	}
	if len(rec.Config) != len(want) {
		t.Errorf("config = %v, want %v", rec.Config, want)
	}
	for k, v := range want {
		if rec.Config[k] != v {
			t.Errorf("config[%s] = %#v, want %#v", k, rec.Config[k], v)
		}
	}
}
