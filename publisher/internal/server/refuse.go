package server

import (
	"encoding/json"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/publisher/internal/wsconn"
)

// refuseWait bounds a refused connection: the error frame, the close and
// the client's close reply.
const refuseWait = 5 * time.Second

// errorFrame is docs/protocol.md's error frame, as wsconn sends it.
type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// refuseUpgraded answers a connection whose access_token failed as
// docs/protocol.md says: the error frame, close 4001, then a short wait for the
// client's close reply, so that the frame is read before the socket goes.
// It never serves the connection, and returns within refuseWait.
func (s *Server) refuseUpgraded(ws *websocket.Conn, code, msg string) {
	defer ws.Close()
	s.deps.Metrics.Errors.WithLabelValues(code).Inc()
	s.deps.Metrics.Closes.WithLabelValues(wsconn.CloseUnauthorized.String()).Inc()
	deadline := time.Now().Add(refuseWait)
	_ = ws.SetWriteDeadline(deadline)
	frame, _ := json.Marshal(errorFrame{Type: "error", Code: code, Message: msg})
	if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return
	}
	reason := "unauthorized"
	if code == wsconn.CodeTokenExpired {
		reason = "token expired"
	}
	closeMsg := websocket.FormatCloseMessage(int(wsconn.CloseUnauthorized), reason)
	if err := ws.WriteControl(websocket.CloseMessage, closeMsg, deadline); err != nil {
		return
	}
	// Read (and drop) until the client's close arrives or time is up.
	ws.SetReadLimit(wsconn.MaxFrameSize)
	_ = ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}
