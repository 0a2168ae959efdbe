// Package web serves the live demo page of the publisher and the bundled
// JavaScript client of the tickwire protocol (docs/protocol.md), embedded in the
// binary so a publisher needs no files on disk.
//
// The handler is immutable once built and safe for concurrent use.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// files holds the page. The Node tests and the package.json beside them are
// for development only and deliberately not embedded.
//
//go:embed static/index.html static/app.js static/chart.js static/tickwire.js static/style.css
var files embed.FS

// csp keeps the page to its own scripts and styles; connect-src allows the
// WebSocket, which a client may point at another host, and HTTP to such a
// host too: history, Server-Sent Events and the client's origin check.
const csp = "default-src 'self'; connect-src 'self' ws: wss: http: https:; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, read once.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler returns the handler of the demo page: "/" is index.html, and
// "/tickwire.js", "/app.js", "/chart.js" and "/style.css" are the files beside it. Any
// other path is 404, any method but GET and HEAD 405. Every answer says
// Cache-Control: no-cache with an ETag, so a browser revalidates cheaply and
// never runs a stale client after a deploy.
func Handler() http.Handler {
	assets := make(map[string]asset)
	err := fs.WalkDir(files, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		assets["/"+path.Base(name)] = asset{
			body:  body,
			ctype: contentType(path.Ext(name)),
			etag:  `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic("web: reading embedded files: " + err.Error()) // cannot happen: go:embed checked them at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, assets)
	})
}

// contentType returns the media type of an embedded file's extension.
// JavaScript must be served as JavaScript: browsers refuse module scripts
// otherwise.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "application/octet-stream"
}

func serve(w http.ResponseWriter, r *http.Request, assets map[string]asset) {
	name := r.URL.Path
	if name == "/" {
		name = "/index.html"
	}
	a, ok := assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if path.Ext(name) == ".html" {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer") // the URL may carry ?token=
	}
	// ServeContent answers If-None-Match, HEAD and Range. Embedded files have
	// no modification time, so it sends no Last-Modified.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
