package obs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/obs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewLoggerLevels(t *testing.T) {
	tests := []struct {
		level      string
		debug, inf bool // which of a debug and an info record appear
		warn       bool
	}{
		{"debug", true, true, true},
		{"DEBUG", true, true, true},
		{"info", false, true, true},
		{"Info", false, true, true},
		{"warn", false, false, true},
		{"error", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := obs.NewLogger(&buf, tt.level, "text")
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d-record")
			log.Info("i-record")
			log.Warn("w-record")
			out := buf.String()
			for _, c := range []struct {
				msg  string
				want bool
			}{{"d-record", tt.debug}, {"i-record", tt.inf}, {"w-record", tt.warn}} {
				if strings.Contains(out, c.msg) != c.want {
					t.Errorf("level %s: %s logged = %v, want %v\n%s", tt.level, c.msg, !c.want, c.want, out)
				}
			}
		})
	}
}

func TestNewLoggerFormats(t *testing.T) {
	for _, format := range []string{"text", "", "json"} {
		t.Run("format="+format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := obs.NewLogger(&buf, "info", format)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", "component", "hub", "n", 3)
			line := strings.TrimSpace(buf.String())
			if format == "json" {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("json log line %q: %v", line, err)
				}
				if rec["msg"] != "hello" || rec["component"] != "hub" || rec["level"] != "INFO" {
					t.Errorf("json record = %v", rec)
				}
				return
			}
			if !strings.Contains(line, "msg=hello") || !strings.Contains(line, "component=hub") || !strings.Contains(line, "level=INFO") {
				t.Errorf("text record = %q", line)
			}
		})
	}
}

func TestNewLoggerRejects(t *testing.T) {
	tests := []struct{ level, format, want string }{
		{"verbose", "text", "LOG_LEVEL"},
		{"", "text", "LOG_LEVEL"},
		{"info", "xml", "LOG_FORMAT"},
		{"info", "JSON", "LOG_FORMAT"},
		{"info", "logfmt", "LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.format, func(t *testing.T) {
			log, err := obs.NewLogger(io.Discard, tt.level, tt.format)
			if err == nil {
				t.Fatalf("NewLogger(%q, %q) = %v, want an error", tt.level, tt.format, log)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

// server mounts the health endpoints with a readiness the test controls.
func server(t *testing.T, ready *atomic.Pointer[error]) *httptest.Server {
	t.Helper()
	reg := obs.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_test_events_total", Help: "Events seen by the test."})
	reg.MustRegister(c)
	c.Add(3)
	mux := http.NewServeMux()
	obs.Mount(mux, reg, func() error {
		if p := ready.Load(); p != nil {
			return *p
		}
		return nil
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHealthz(t *testing.T) {
	var ready atomic.Pointer[error]
	notReady := errors.New("redis down")
	ready.Store(&notReady)
	srv := server(t, &ready)
	// Health does not depend on readiness.
	resp, body := get(t, srv, "/healthz")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil || m["status"] != "ok" {
		t.Errorf("/healthz body %q: %v", body, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
}

func TestReadyz(t *testing.T) {
	var ready atomic.Pointer[error]
	srv := server(t, &ready)

	resp, body := get(t, srv, "/readyz")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("/readyz while ready = %d %s", resp.StatusCode, body)
	}

	notReady := errors.New("consumer group publisher:a missing on md:{0}:feed")
	ready.Store(&notReady)
	resp, body = get(t, srv, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while not ready = %d, want 503", resp.StatusCode)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if m["status"] != "not ready" || m["reason"] != notReady.Error() {
		t.Errorf("/readyz body = %v, want the reason %q", m, notReady)
	}

	ready.Store(nil)
	if resp, _ := get(t, srv, "/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after recovery = %d", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	var ready atomic.Pointer[error]
	srv := server(t, &ready)
	resp, body := get(t, srv, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want Prometheus text", ct)
	}
	for _, want := range []string{
		"# TYPE tickwire_test_events_total counter",
		"tickwire_test_events_total 3",
		"go_goroutines ",
		"process_",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMountRoutes(t *testing.T) {
	var ready atomic.Pointer[error]
	srv := server(t, &ready)
	resp, err := srv.Client().Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/healthz", nil)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /healthz = %d, want 200", resp.StatusCode)
	}
	if resp, _ := get(t, srv, "/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", resp.StatusCode)
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	obs.WriteJSON(rec, http.StatusTeapot, map[string]any{"code": "x", "n": 1})
	if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("WriteJSON: %d %v", rec.Code, rec.Header())
	}
	if got := strings.TrimSpace(rec.Body.String()); got != `{"code":"x","n":1}` {
		t.Errorf("body = %s", got)
	}
}
