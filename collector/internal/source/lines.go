package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tickwire/tickwire/shared/event"
)

// Line reading. maxLine leaves room around the largest data object for the
// channel, the timestamp and the punctuation.
const (
	maxLine    = event.MaxDataSize + 1024
	chunkLines = 256 // lines handed over at once when input arrives fast
)

// line is one input line, numbered from 1; text is nil when it was too long.
type line struct {
	n       int
	text    []byte
	tooLong bool
}

// chunk is what the reading goroutine hands over: lines, and last a chunk
// with end set and the read error (nil at EOF).
type chunk struct {
	lines []line
	end   bool
	err   error
}

// readLines reads r line by line and sends the lines on out in chunks: a
// chunk goes out when it is full or when nothing more is buffered (so that a
// slow input is not held back). It returns after sending the end chunk, or
// when ctx ends.
func readLines(ctx context.Context, r io.Reader, out chan<- chunk) {
	br := bufio.NewReaderSize(r, maxLine)
	var c chunk
	for n := 1; ; n++ {
		l, err := readLine(br, n)
		if l.tooLong || len(l.text) > 0 {
			c.lines = append(c.lines, l)
		}
		if err != nil {
			c.end = true
			if !errors.Is(err, io.EOF) {
				c.err = err
			}
		}
		if c.end || len(c.lines) >= chunkLines || (len(c.lines) > 0 && br.Buffered() == 0) {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
			if c.end {
				return
			}
			c = chunk{}
		}
	}
}

// readLine reads one line (without its end) into a fresh slice. A line
// longer than the buffer is consumed and marked too long.
func readLine(br *bufio.Reader, n int) (line, error) {
	b, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line{n: n, text: bytes.Clone(bytes.TrimSpace(b))}, err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = br.ReadSlice('\n')
	}
	return line{n: n, tooLong: true}, err
}

// input is one JSONL line as it is decoded.
type input struct {
	Ch   *string         `json:"ch"`
	TS   *json.Number    `json:"ts"`
	Data json.RawMessage `json:"data"`
}

// ParseLine decodes one input line, {"ch":"trade:AAPL","ts":1764288000120,
// "data":{…}}: ch a concrete channel, ts Unix ms (optional: absent, the
// event is stamped now), data a JSON object. Other fields are ignored.
func ParseLine(text []byte, now time.Time) (Event, error) {
	e, hasTS, err := decodeLine(text)
	if err == nil && !hasTS {
		e.TS = now.UnixMilli()
	}
	return e, err
}

// decodeLine is ParseLine without the clock: hasTS says whether the line
// gave ts (if not, e.TS is 0).
func decodeLine(text []byte) (e Event, hasTS bool, err error) {
	var in input
	if err := json.Unmarshal(text, &in); err != nil {
		return Event{}, false, fmt.Errorf("%w: %v", event.ErrBadData, err)
	}
	if in.Ch == nil {
		return Event{}, false, fmt.Errorf("%w %q", event.ErrMissingField, event.FieldChannel)
	}
	ch, err := event.ParseChannel(*in.Ch)
	if err != nil {
		return Event{}, false, err
	}
	if ch.IsWildcard() {
		return Event{}, false, fmt.Errorf("%w %q: an event needs a concrete symbol", event.ErrInvalidChannel, ch)
	}
	e = Event{Channel: ch}
	if in.TS != nil {
		if e.TS, err = strconv.ParseInt(in.TS.String(), 10, 64); err != nil || e.TS < 0 {
			return Event{}, false, fmt.Errorf("%w %q: want Unix milliseconds", event.ErrBadTimestamp, in.TS.String())
		}
	}
	if len(in.Data) == 0 {
		return Event{}, false, fmt.Errorf("%w %q", event.ErrMissingField, event.FieldData)
	}
	if err := event.CheckData(in.Data); err != nil {
		return Event{}, false, err
	}
	e.Data = NewRaw(ch.Kind, in.Data)
	return e, in.TS != nil, nil
}
