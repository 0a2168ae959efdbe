package server

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/monitor"
	"github.com/tickwire/tickwire/publisher/internal/wsconn"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/obs"
)

// serveSSE answers GET /v1/sse (docs/protocol.md): every refusal is an HTTP
// status with the JSON error body, before the stream starts; then 200 and
// the event stream (wsconn.NewStream), served on the handler's goroutine
// until the client goes, the stream ends or the replica drains. The route
// has no read or write deadline of the plain routes: the stream's writer
// sets one per write.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request) {
	release, ok := s.acquireConn(w, r)
	if !ok {
		return
	}
	handed := false // to a hijacked stream, which releases it when it ends
	defer func() {
		if !handed {
			release()
		}
	}()
	tok, _ := requestToken(r)
	if tok == "" {
		obs.WriteJSON(w, http.StatusUnauthorized, httpError{wsconn.CodeUnauthorized, "a token is required (Authorization: Bearer, or access_token)"})
		return
	}
	ident, err := s.deps.Verifier.Verify(tok)
	if err != nil {
		s.refuse(r, monitor.AuthReason(err), err)
		obs.WriteJSON(w, http.StatusUnauthorized, httpError{tokenErrorCode(err), err.Error()})
		return
	}
	req, status, herr := s.streamRequest(r, ident)
	if herr != nil {
		obs.WriteJSON(w, status, herr)
		return
	}
	if !s.users.Acquire(ident.Subject) {
		s.refuse(r, monitor.RefusedUserLimit, nil)
		obs.WriteJSON(w, http.StatusTooManyRequests, httpError{wsconn.CodeRateLimited, "too many connections for this user; close another"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if r.ProtoMajor == 1 {
		// Taken from net/http, the stream keeps none of its buffers and
		// goroutines (about 30 KiB a stream, BENCHMARKS.md).
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c := wsconn.NewHijackedStream(s.deps, conn, streamHead(h), r.RemoteAddr, ident)
			untrack := s.track(c) // the drain tells it to go
			handed = true
			c.StartStream(req, func() {
				untrack()
				release()
			})
			return
		}
	}
	w.WriteHeader(http.StatusOK) // sent with the first line, once subscribed
	c := wsconn.NewStream(s.deps, w, r.RemoteAddr, ident)
	c.ServeStream(s.shutdown, r.Context().Done(), req)
}

// streamHead is the head of an event stream's response on a hijacked
// HTTP/1.1 connection: status 200, the headers set (the stream's and
// CORS's), and no length: the body ends with the connection.
func streamHead(h http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&b)
	b.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\nConnection: close\r\n\r\n")
	return b.Bytes()
}

// streamRequest parses and checks the query and Last-Event-ID in
// docs/protocol.md's order: a malformed channel (400 invalid_channel), one the
// token forbids (403), too many (400 too_many_channels), then the other
// parameters (400 bad_request).
func (s *Server) streamRequest(r *http.Request, ident auth.Identity) (wsconn.StreamRequest, int, *httpError) {
	q := r.URL.Query()
	req := wsconn.StreamRequest{Snapshot: q.Get("snapshot") != "false"}
	list := strings.Split(q.Get("channels"), ",")
	if q.Get("channels") == "" {
		return req, http.StatusBadRequest, &httpError{wsconn.CodeBadRequest, "channels= must list at least one channel"}
	}
	seen := make(map[event.Channel]bool, len(list))
	for _, name := range list {
		ch, err := event.ParseChannel(name)
		if err != nil {
			return req, http.StatusBadRequest, &httpError{wsconn.CodeInvalidChannel, err.Error()}
		}
		if !seen[ch] {
			seen[ch] = true
			req.Channels = append(req.Channels, ch)
		}
	}
	for _, ch := range req.Channels {
		if !ident.Allows(ch) {
			return req, http.StatusForbidden, &httpError{wsconn.CodeForbidden, "the token does not allow " + ch.String()}
		}
	}
	if len(req.Channels) > s.cfg.MaxChannels {
		return req, http.StatusBadRequest, &httpError{wsconn.CodeTooManyChannels, "at most " + strconv.Itoa(s.cfg.MaxChannels) + " channels per stream"}
	}
	if v := q.Get("throttle_ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || (ms != 0 && (ms < 50 || ms > 60000)) {
			return req, http.StatusBadRequest, &httpError{wsconn.CodeBadRequest, "throttle_ms must be 0 (off) or 50 to 60000"}
		}
		req.Throttle = time.Duration(ms) * time.Millisecond
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		pos, err := wsconn.ParsePosition(v, s.deps.History.Shards())
		if err != nil {
			return req, http.StatusBadRequest, &httpError{wsconn.CodeBadRequest, err.Error()}
		}
		req.Resume = pos
	}
	return req, 0, nil
}
