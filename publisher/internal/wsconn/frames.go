package wsconn

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tickwire/tickwire/publisher/internal/hub"
)

// Error codes of docs/protocol.md.
const (
	CodeBadRequest      = "bad_request"
	CodeUnauthorized    = "unauthorized"
	CodeTokenExpired    = "token_expired"
	CodeForbidden       = "forbidden"
	CodeInvalidChannel  = "invalid_channel"
	CodeTooManyChannels = "too_many_channels"
	CodeRateLimited     = "rate_limited"
	CodeInternal        = "internal"
)

// clientFrame is every field any client frame may carry.
type clientFrame struct {
	Op       string            `json:"op"`
	ID       string            `json:"id"`
	Token    string            `json:"token"`
	Channels []string          `json:"channels"`
	Since    map[string]string `json:"since"`
	Snapshot *bool             `json:"snapshot"`
	Throttle *int64            `json:"throttle_ms"`
}

// parseFrame decodes a client frame. Its error says what was wrong, in words
// a client developer can act on.
func parseFrame(data []byte) (clientFrame, error) {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			// Keep the id if it decoded, so the error can be matched.
			return f, fmt.Errorf("field %q: want %s", typeErr.Field, wantType(typeErr.Field))
		}
		return clientFrame{}, errors.New("frame is not a JSON object")
	}
	if f.Op == "" {
		return f, errors.New(`missing "op"`)
	}
	return f, nil
}

func wantType(field string) string {
	switch field {
	case "channels":
		return "an array of strings"
	case "since":
		return "an object of channel to event id"
	case "snapshot":
		return "a boolean"
	case "throttle_ms":
		return "an integer of milliseconds"
	default:
		return "a string"
	}
}

type welcomeFrame struct {
	Type        string `json:"type"`
	ID          string `json:"id,omitempty"`
	User        string `json:"user"`
	Replica     string `json:"replica"`
	HeartbeatMs int64  `json:"heartbeat_ms"`
	MaxChannels int    `json:"max_channels"`
}

type subscribedFrame struct {
	Type      string          `json:"type"`
	ID        string          `json:"id,omitempty"`
	Channels  []string        `json:"channels"`
	Recovered map[string]bool `json:"recovered,omitempty"`
}

type channelsFrame struct { // unsubscribed, gap
	Type     string   `json:"type"`
	ID       string   `json:"id,omitempty"`
	Channels []string `json:"channels"`
	Reason   string   `json:"reason,omitempty"`
}

type pongFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

type errorFrame struct {
	Type     string   `json:"type"`
	ID       string   `json:"id,omitempty"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Channels []string `json:"channels,omitempty"`
}

// encode marshals a server frame. The frames are plain structs of strings,
// numbers and maps, which cannot fail to marshal.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("wsconn: marshal %T: %v", v, err))
	}
	return b
}

var (
	eventsHead   = []byte(`{"type":"events","events":[`)
	snapshotHead = []byte(`{"type":"snapshot","events":[`)
	framesTail   = []byte(`]}`)
)

// appendSnapshot appends a snapshot frame of msgs to b.
func appendSnapshot(b []byte, msgs []*hub.Message) []byte {
	b = append(b, snapshotHead...)
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.Wire...)
	}
	return append(b, framesTail...)
}
