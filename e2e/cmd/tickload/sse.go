package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// sseHTTP is the clients' HTTP client for event streams: each stream is a
// connection of its own (HTTP/1.1), and none is kept idle.
var sseHTTP = &http.Client{Transport: &http.Transport{
	ResponseHeaderTimeout: 10 * time.Second,
	DisableCompression:    true,
	MaxIdleConnsPerHost:   -1,
}}

// sseURL is the event streams' endpoint of the publisher whose WebSocket
// endpoint is wsURL (ws://host/v1/stream -> http://host/v1/sse).
func sseURL(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("-url %q: want ws:// or wss://", wsURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/stream") + "/sse"
	u.RawQuery = ""
	return u.String(), nil
}

// sseClient runs one event stream (GET /v1/sse, docs/protocol.md) until
// ctx ends: each data line is a server frame, counted as a WebSocket's.
func sseClient(ctx context.Context, o options, tok, channels string, st *stats, connected *atomic.Int64) error {
	endpoint, err := sseURL(o.url)
	if err != nil {
		return err
	}
	q := url.Values{"channels": {channels}, "snapshot": {"false"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := sseHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("sse: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("sse: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	connected.Add(1)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	lat := make([]time.Duration, 0, 256)
	var long []byte // a line longer than the reader's buffer
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			lat = st.frame(bytes.TrimRight(data, "\r\n"), lat)
		}
	}
}
