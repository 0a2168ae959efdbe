package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/publisher/internal/wsconn"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/streams"
)

// Limits of GET /v1/history (docs/protocol.md). They are not read from the
// environment yet; tests change them with historyService.setLimits.
const (
	historyDefaultLimit = 100
	historyMaxLimit     = 1000
	// historyRate and historyBurst are the requests a user may make: a
	// page loading a chart makes a few, a script paging back through a day
	// of bars a few a second.
	historyRate  = 5
	historyBurst = 20
	// historyUsers bounds the map of per-user limiters.
	historyUsers = 10000
	// historySlotWait is how long a request waits for one of the
	// replica's history read slots (feed.ConcurrentReads, shared with the
	// WebSocket's snapshots and replays).
	historySlotWait = time.Second
	// historyTimeout bounds the Redis read of one request.
	historyTimeout = 5 * time.Second
)

// historyService answers GET /v1/history. It is safe for concurrent use.
type historyService struct {
	client redis.UniversalClient
	layout streams.Layout
	verify func(string) (auth.Identity, error)
	origin func(*http.Request) bool
	bad    *streams.BadEntries

	slots *hub.Semaphore // the replica's, shared with feed.History

	mu    sync.Mutex // guards rates, swapped by tests
	rates *userRates
}

func newHistoryService(client redis.UniversalClient, layout streams.Layout, slots *hub.Semaphore,
	verify func(string) (auth.Identity, error), origin func(*http.Request) bool, log *slog.Logger) *historyService {
	return &historyService{
		client: client, layout: layout, slots: slots, verify: verify, origin: origin,
		bad:   &streams.BadEntries{Log: log.With("component", "history")},
		rates: newUserRates(historyRate, historyBurst, historyUsers),
	}
}

// setRate replaces the per-user rate (tests).
func (h *historyService) setRate(r rate.Limit, burst int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rates = newUserRates(r, burst, historyUsers)
}

func (h *historyService) userRates() *userRates {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rates
}

// historyQuery is a parsed request.
type historyQuery struct {
	ch            event.Channel
	limit         int
	after, before string // "" or a valid id
}

// errHistory is a refusal with its HTTP status and protocol code.
type errHistory struct {
	status int
	code   string
	msg    string
}

func (e *errHistory) Error() string { return e.code + ": " + e.msg }

func badRequest(code, msg string) *errHistory {
	return &errHistory{http.StatusBadRequest, code, msg}
}

func (h *historyService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.cors(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	events, q, err := h.serve(r)
	if err != nil {
		var he *errHistory
		if !errors.As(err, &he) {
			he = &errHistory{http.StatusInternalServerError, wsconn.CodeInternal, "history is unavailable"}
		}
		if he.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		obs.WriteJSON(w, he.status, httpError{he.code, he.msg})
		return
	}
	b := make([]byte, 0, 64+len(events)*128)
	b = append(b, `{"channel":`...)
	b = strconv.AppendQuote(b, q.ch.String())
	b = append(b, `,"events":[`...)
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = events[i].AppendWire(b)
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// serve authenticates, limits and reads; errors are *errHistory unless
// Redis failed.
func (h *historyService) serve(r *http.Request) ([]event.Event, historyQuery, error) {
	tok, _ := requestToken(r)
	if tok == "" {
		return nil, historyQuery{}, &errHistory{http.StatusUnauthorized, wsconn.CodeUnauthorized, "a token is required (Authorization: Bearer, or access_token)"}
	}
	id, err := h.verify(tok)
	if err != nil {
		return nil, historyQuery{}, &errHistory{http.StatusUnauthorized, tokenErrorCode(err), err.Error()}
	}
	rates, slots := h.userRates(), h.slots
	if !rates.Allow(id.Subject, time.Now()) {
		return nil, historyQuery{}, &errHistory{http.StatusTooManyRequests, wsconn.CodeRateLimited, "too many history requests; retry later"}
	}
	q, err := parseHistoryQuery(r)
	if err != nil {
		return nil, q, err
	}
	if !id.Allows(q.ch) {
		return nil, q, &errHistory{http.StatusForbidden, wsconn.CodeForbidden, "the token does not allow " + q.ch.String()}
	}
	wctx, cancel := context.WithTimeout(r.Context(), historySlotWait)
	err = slots.Acquire(wctx)
	cancel()
	if err != nil {
		return nil, q, &errHistory{http.StatusTooManyRequests, wsconn.CodeRateLimited, "this replica is busy reading history; retry later"}
	}
	defer slots.Release()
	ctx, cancel := context.WithTimeout(r.Context(), historyTimeout)
	defer cancel()
	events, err := h.read(ctx, q)
	return events, q, err
}

func parseHistoryQuery(r *http.Request) (historyQuery, error) {
	v := r.URL.Query()
	var q historyQuery
	name := v.Get("channel")
	if name == "" {
		return q, badRequest(wsconn.CodeBadRequest, "the channel parameter is required")
	}
	ch, err := event.ParseChannel(name)
	if err != nil {
		return q, badRequest(wsconn.CodeInvalidChannel, err.Error())
	}
	if ch.IsWildcard() {
		return q, badRequest(wsconn.CodeBadRequest, "history is per concrete channel, not "+ch.String())
	}
	q.ch = ch
	q.limit = historyDefaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > historyMaxLimit {
			return q, badRequest(wsconn.CodeBadRequest, fmt.Sprintf("limit must be 1 to %d", historyMaxLimit))
		}
		q.limit = n
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"after", &q.after}, {"before", &q.before}} {
		if s := v.Get(p.name); s != "" {
			id, err := event.ParseID(s)
			if err != nil {
				return q, badRequest(wsconn.CodeBadRequest, p.name+": "+err.Error())
			}
			*p.dst = id.String()
		}
	}
	if q.after != "" && q.before != "" {
		return q, badRequest(wsconn.CodeBadRequest, "give after or before, not both")
	}
	return q, nil
}

// read returns the events of q, oldest first. Entries that do not decode
// are skipped (and logged), so a page may hold fewer than limit.
func (h *historyService) read(ctx context.Context, q historyQuery) ([]event.Event, error) {
	key := h.layout.History(q.ch)
	var entries []redis.XMessage
	var err error
	switch {
	case q.after != "":
		entries, err = h.client.XRangeN(ctx, key, "("+q.after, "+", int64(q.limit)).Result()
	case q.before != "":
		entries, err = h.client.XRevRangeN(ctx, key, "("+q.before, "-", int64(q.limit)).Result()
	default:
		entries, err = h.client.XRevRangeN(ctx, key, "+", "-", int64(q.limit)).Result()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		if streams.IsWrongType(err) {
			h.bad.Report(key, err)
			return []event.Event{}, nil
		}
		return nil, fmt.Errorf("read history %s: %w", key, err)
	}
	if q.after == "" {
		for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
			entries[i], entries[j] = entries[j], entries[i]
		}
	}
	return streams.Decode(entries, h.bad.Report), nil
}
