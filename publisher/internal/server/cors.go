package server

import (
	"net/http"

	"github.com/tickwire/tickwire/publisher/internal/wsconn"
	"github.com/tickwire/tickwire/shared/obs"
)

// cors answers for the browser pages allowed to read history (the same
// rule as the WebSocket's origins): a page of another origin gets 403, a
// preflight gets 204. It reports whether to go on with the request.
func (h *historyService) cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return r.Method != http.MethodOptions || writeNoContent(w)
	}
	if !h.origin(r) {
		obs.WriteJSON(w, http.StatusForbidden, httpError{wsconn.CodeForbidden, "origin not allowed: " + origin})
		return false
	}
	setCORS(w, origin)
	if r.Method == http.MethodOptions {
		return writeNoContent(w)
	}
	return true
}

// setCORS allows origin to read the response and to send Authorization.
func setCORS(w http.ResponseWriter, origin string) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Methods", "GET")
	hd.Set("Access-Control-Allow-Headers", "Authorization")
	hd.Set("Access-Control-Max-Age", "600")
}

func writeNoContent(w http.ResponseWriter) bool {
	w.WriteHeader(http.StatusNoContent)
	return false
}

// withCORS adds CORS headers for allowed origins to h (the JavaScript
// client: a page elsewhere may load it, and its error handling fetches it
// to tell a refused origin from a server that is down). Refused origins get
// the file without the headers, which a browser then hides from them.
func withCORS(h http.Handler, allowed func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); o != "" && allowed(r) {
			setCORS(w, o)
		}
		h.ServeHTTP(w, r)
	})
}
