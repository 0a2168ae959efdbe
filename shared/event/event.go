package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxDataSize bounds the data object of one event. Anything larger in a
// stream is treated as poison and skipped.
const MaxDataSize = 16 << 10

// Sentinel errors of decoding an event from a stream entry or from input.
var (
	// ErrMissingField means a required field (ch, ts or data) is absent.
	ErrMissingField = errors.New("missing field")
	// ErrBadData means data is not a JSON object of the kind's fields.
	ErrBadData = errors.New("bad data")
	// ErrBadTimestamp means ts is not a non-negative integer of Unix ms.
	ErrBadTimestamp = errors.New("bad timestamp")
)

// Event is one market event. Channel is in normal form and concrete; ID is
// empty until Redis assigns one; Data is a JSON object.
type Event struct {
	Channel Channel
	ID      ID
	TS      int64 // event time, Unix ms
	Data    json.RawMessage
}

// Stream entry field names, as an operator sees them in redis-cli.
const (
	FieldChannel = "ch"
	FieldTS      = "ts"
	FieldData    = "data"
)

// Fields returns the stream entry fields of e, ready for XADD.
func (e *Event) Fields() []any {
	return []any{FieldChannel, e.Channel.String(), FieldTS, strconv.FormatInt(e.TS, 10), FieldData, string(e.Data)}
}

// FromEntry decodes a stream entry as go-redis returns it. Entries written by
// hand that do not follow the layout are refused with a wrapped sentinel.
func FromEntry(id string, values map[string]any) (Event, error) {
	var e Event
	var err error
	if e.ID, err = ParseID(id); err != nil {
		return Event{}, err
	}
	ch, ok := values[FieldChannel].(string)
	if !ok {
		return Event{}, fmt.Errorf("entry %s: %w %q", id, ErrMissingField, FieldChannel)
	}
	if e.Channel, err = ParseChannel(ch); err != nil {
		return Event{}, fmt.Errorf("entry %s: %w", id, err)
	}
	if e.Channel.IsWildcard() {
		return Event{}, fmt.Errorf("entry %s: %w: wildcard channel", id, ErrInvalidChannel)
	}
	ts, ok := values[FieldTS].(string)
	if !ok {
		return Event{}, fmt.Errorf("entry %s: %w %q", id, ErrMissingField, FieldTS)
	}
	if e.TS, err = strconv.ParseInt(ts, 10, 64); err != nil || e.TS < 0 || ts[0] == '+' {
		return Event{}, fmt.Errorf("entry %s: %w %q", id, ErrBadTimestamp, clip(ts))
	}
	data, ok := values[FieldData].(string)
	if !ok {
		return Event{}, fmt.Errorf("entry %s: %w %q", id, ErrMissingField, FieldData)
	}
	if err := CheckData([]byte(data)); err != nil {
		return Event{}, fmt.Errorf("entry %s: %w", id, err)
	}
	e.Data = json.RawMessage(data)
	return e, nil
}

// CheckData checks that data is a JSON object no larger than MaxDataSize.
// It does not look at the fields: the publisher passes data through as the
// collector wrote it.
func CheckData(data []byte) error {
	if len(data) > MaxDataSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadData, len(data), MaxDataSize)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(data) || !utf8.Valid(data) {
		return fmt.Errorf("%w: not a JSON object", ErrBadData)
	}
	return nil
}

// AppendWire appends e as the protocol's EVENT JSON object:
// {"ch":…,"id":…,"ts":…,"data":…}. Channel and id never need escaping, and
// Data is already JSON, so this is plain concatenation.
func (e *Event) AppendWire(b []byte) []byte {
	b = append(b, `{"ch":"`...)
	b = append(b, kindNames[e.Channel.Kind]...)
	b = append(b, ':')
	b = append(b, e.Channel.Symbol...)
	b = append(b, `","id":"`...)
	b = strconv.AppendUint(b, e.ID.Ms, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, e.ID.Seq, 10)
	b = append(b, `","ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}')
}
