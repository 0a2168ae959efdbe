package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(body)
}

func TestHandlerServesFiles(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		path      string
		ctype     string
		contains  []string
		wantCSP   bool
		wantClass string
	}{
		{"/", "text/html", []string{`<script type="module" src="/app.js">`, `href="/style.css"`}, true, ""},
		{"/index.html", "text/html", []string{`src="/app.js"`}, true, ""},
		{"/tickwire.js", "text/javascript", []string{"export class TickwireClient"}, false, ""},
		{"/app.js", "text/javascript", []string{"from './tickwire.js'", "from './chart.js'"}, false, ""},
		{"/chart.js", "text/javascript", []string{"export class CandleChart"}, false, ""},
		{"/style.css", "text/css", []string{"--bg"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv, http.MethodGet, tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.ctype)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", cc)
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if got := resp.Header.Get("Content-Security-Policy") != ""; got != tt.wantCSP {
				t.Errorf("Content-Security-Policy present = %v, want %v", got, tt.wantCSP)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body does not contain %q", s)
				}
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	resp, _ := get(t, srv, http.MethodGet, "/tickwire.js", nil)
	etag := resp.Header.Get("ETag")
	resp, body := get(t, srv, http.MethodGet, "/tickwire.js", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: status %d, %d bytes; want 304 and no body", resp.StatusCode, len(body))
	}
}

func TestHandlerRefuses(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/nope.js", http.StatusNotFound},
		{http.MethodGet, "/static/index.html", http.StatusNotFound},
		{http.MethodGet, "/test/tickwire.test.js", http.StatusNotFound},
		{http.MethodGet, "/package.json", http.StatusNotFound},
		{http.MethodGet, "/../web.go", http.StatusNotFound},
		{http.MethodGet, "/app.js/", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodHead, "/app.js", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, _ := get(t, srv, tt.method, tt.path, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
