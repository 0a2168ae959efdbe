package wsconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/publisher/internal/monitor"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
)

// maxFutureSkew is how far ahead of this replica's clock a since id may be
// before it is refused as nonsense.
const maxFutureSkew = time.Minute

// handle dispatches one client text frame.
func (c *Conn) handle(data []byte) {
	f, err := parseFrame(data)
	if err != nil {
		c.violation(f.ID, err.Error())
		return
	}
	if f.Op == "auth" {
		c.handleAuth(f)
		return
	}
	if !c.authed {
		c.refuse(f.ID, "authenticate first: send {\"op\":\"auth\",\"token\":…}")
		return
	}
	switch f.Op {
	case "subscribe":
		c.handleSubscribe(f)
	case "unsubscribe":
		c.handleUnsubscribe(f)
	case "ping":
		c.q.frame(encode(pongFrame{Type: "pong", ID: f.ID}))
	default:
		c.violation(f.ID, fmt.Sprintf("unknown op %q: want auth, subscribe, unsubscribe or ping", clip(f.Op)))
	}
}

// handleAuth verifies a token sent in a frame: the first authentication,
// or a renewal on an open connection.
func (c *Conn) handleAuth(f clientFrame) {
	if f.Token == "" {
		if !c.authed {
			c.refuse(f.ID, `auth frame without "token"`)
			return
		}
		c.violation(f.ID, `auth frame without "token"`)
		return
	}
	ident, err := c.d.Verifier.Verify(f.Token)
	if err != nil {
		code := CodeUnauthorized
		if errors.Is(err, auth.ErrTokenExpired) {
			code = CodeTokenExpired // PROTOCOL.md: the client fetches a fresh token
		}
		if !c.authed {
			c.refused(monitor.AuthReason(err), "err", err)
		}
		c.d.Metrics.Errors.WithLabelValues(code).Inc()
		c.q.frame(errFrame(f.ID, code, err.Error()))
		// A failed renewal leaves the current token in force until it expires.
		if !c.authed {
			c.q.close(CloseUnauthorized, "unauthorized")
		}
		return
	}
	if c.authed && ident.Subject != c.ident.Subject {
		c.d.Metrics.Errors.WithLabelValues(CodeUnauthorized).Inc()
		c.q.frame(errFrame(f.ID, CodeUnauthorized, "token is for another user; open a new connection"))
		return
	}
	c.admit(ident, f.ID)
}

// admit makes ident the connection's identity and sends welcome. On a
// renewal, channels the new token no longer allows are unsubscribed and
// listed in an unsubscribed frame.
func (c *Conn) admit(ident auth.Identity, id string) {
	if !c.authed {
		if !c.d.Users.Acquire(ident.Subject) {
			c.refused(monitor.RefusedUserLimit, "user", ident.Subject)
			c.q.close(CloseTooManyConns, "too many connections for this user")
			return
		}
		c.userHeld = true
		c.authed = true
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.d.Config.Heartbeat))
	}
	c.ident = ident
	c.log = c.d.Log.With("user", ident.Subject)
	c.armExpiry(ident.Expires.Add(c.d.Config.Leeway))
	cfg := c.d.Config
	c.q.frame(encode(welcomeFrame{
		Type: "welcome", ID: id, User: ident.Subject, Replica: cfg.Replica,
		HeartbeatMs: cfg.Heartbeat.Milliseconds(), MaxChannels: cfg.MaxChannels,
	}))
	var dropped []event.Channel
	for ch := range c.subs {
		if !ident.Allows(ch) {
			dropped = append(dropped, ch)
		}
	}
	if len(dropped) > 0 {
		c.unsubscribe(dropped)
		c.q.frame(encode(channelsFrame{Type: "unsubscribed", Channels: names(dropped)}))
	}
}

// request is a validated subscribe.
type request struct {
	channels []event.Channel // normalised, without duplicates
	since    map[event.Channel]event.ID
	snapshot bool
}

// validate applies PROTOCOL.md's checks in order; the first that fails
// names the code, and the error lists the offending channels.
func (c *Conn) validate(f clientFrame) (request, []byte) {
	if len(f.Channels) == 0 {
		return request{}, c.errorFrame(f.ID, CodeBadRequest, `"channels" must be a non-empty array of channels`)
	}
	req := request{snapshot: f.Snapshot == nil || *f.Snapshot}
	chs, bad, badMsg := parseChannels(f.Channels)
	seen := make(map[event.Channel]bool, len(chs))
	for _, ch := range chs {
		if !seen[ch] {
			seen[ch] = true
			req.channels = append(req.channels, ch)
		}
	}
	if len(bad) > 0 {
		return request{}, c.errorFrame(f.ID, CodeInvalidChannel, badMsg, bad...)
	}
	var forbidden []string
	for _, ch := range req.channels {
		if !c.ident.Allows(ch) {
			forbidden = append(forbidden, ch.String())
		}
	}
	if len(forbidden) > 0 {
		return request{}, c.errorFrame(f.ID, CodeForbidden, "the token does not allow these channels", forbidden...)
	}
	var added []string
	for _, ch := range req.channels {
		if _, ok := c.subs[ch]; !ok {
			added = append(added, ch.String())
		}
	}
	if len(c.subs)+len(added) > c.d.Config.MaxChannels {
		msg := fmt.Sprintf("at most %d channels per connection; %d subscribed", c.d.Config.MaxChannels, len(c.subs))
		return request{}, c.errorFrame(f.ID, CodeTooManyChannels, msg, added...)
	}
	if len(f.Since) > 0 {
		req.since = make(map[event.Channel]event.ID, len(f.Since))
		for k, v := range f.Since {
			ch, err := event.ParseChannel(k)
			if err != nil || ch.IsWildcard() || !seen[ch] {
				return request{}, c.errorFrame(f.ID, CodeBadRequest, fmt.Sprintf("since %q: must name a concrete channel listed in \"channels\"", clip(k)))
			}
			id, err := event.ParseID(v)
			if err != nil {
				return request{}, c.errorFrame(f.ID, CodeBadRequest, fmt.Sprintf("since %s: %v", ch, err))
			}
			if id.Ms > uint64(time.Now().Add(maxFutureSkew).UnixMilli()) {
				return request{}, c.errorFrame(f.ID, CodeBadRequest, fmt.Sprintf("since %s: id %s is in the future", ch, id))
			}
			req.since[ch] = id
		}
	}
	return req, nil
}

func (c *Conn) errorFrame(id, code, msg string, channels ...string) []byte {
	c.d.Metrics.Errors.WithLabelValues(code).Inc()
	if code == CodeBadRequest {
		c.bad++
		if c.bad >= maxViolations {
			defer c.q.close(CloseProtocol, "too many malformed frames")
		}
	}
	return errFrame(id, code, msg, channels...)
}

// handleSubscribe subscribes all of the request or nothing. New channels
// are held back (live events wait) while their history is read, then the
// replies go out in PROTOCOL.md's order: subscribed, gap, snapshot,
// replayed events, and the held-back live events newer than all of them.
func (c *Conn) handleSubscribe(f clientFrame) {
	req, errb := c.validate(f)
	if errb != nil {
		c.q.frame(errb)
		return
	}
	var fresh, recover, snap []event.Channel
	for _, ch := range req.channels {
		if _, ok := c.subs[ch]; ok {
			continue
		}
		fresh = append(fresh, ch)
		_, hasSince := req.since[ch]
		switch {
		case hasSince:
			recover = append(recover, ch)
		case req.snapshot:
			recover = append(recover, ch)
			snap = append(snap, ch)
		}
	}
	c.q.hold(recover)
	c.d.Hub.Subscribe(c, fresh)

	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	snapshot, replay, recovered, err := c.readHistory(ctx, req, fresh, snap)
	if err != nil {
		c.d.Hub.Unsubscribe(c, fresh)
		c.q.abandon(recover)
		c.log.Warn("subscribe failed: history unavailable", "err", err)
		c.q.frame(c.errorFrame(f.ID, CodeInternal, "history is unavailable right now; retry the subscribe"))
		return
	}
	// No snapshot for a channel resumed with since, or already delivered
	// on this connection by another subscription: the latest event would
	// jump over the ones between since (or the last one sent) and it.
	snapshot = slices.DeleteFunc(snapshot, func(m *hub.Message) bool {
		_, resumed := req.since[m.Event.Channel]
		return resumed || c.covered(m.Event.Channel)
	})
	for _, ch := range fresh {
		c.subs[ch] = struct{}{}
	}
	head := [][]byte{encode(subscribedFrame{Type: "subscribed", ID: f.ID, Channels: names(req.channels), Recovered: recovered})}
	var gaps []string
	for ch, ok := range recovered {
		if !ok {
			gaps = append(gaps, ch)
		}
	}
	if len(gaps) > 0 {
		sort.Strings(gaps)
		head = append(head, encode(channelsFrame{Type: "gap", Channels: gaps, Reason: "trimmed"}))
	}
	floor := make(map[event.Channel]event.ID, len(req.since))
	for _, ch := range fresh {
		if id, ok := req.since[ch]; ok {
			floor[ch] = id
		}
	}
	c.q.release(recover, head, floor, snapshot, replay)
}

// readHistory reads the snapshot of snap and the replay of each fresh
// channel with since.
func (c *Conn) readHistory(ctx context.Context, req request, fresh, snap []event.Channel) (snapshot, replay []*hub.Message, recovered map[string]bool, err error) {
	if len(snap) > 0 {
		if snapshot, err = c.d.History.Latest(ctx, snap); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, ch := range fresh {
		since, ok := req.since[ch]
		if !ok {
			continue
		}
		msgs, found, err := c.d.History.After(ctx, ch, since)
		if err != nil {
			return nil, nil, nil, err
		}
		if recovered == nil {
			recovered = make(map[string]bool)
		}
		recovered[ch.String()] = found
		replay = append(replay, msgs...)
	}
	return snapshot, replay, recovered, nil
}

// handleUnsubscribe removes channels; ones not subscribed are acknowledged
// all the same.
func (c *Conn) handleUnsubscribe(f clientFrame) {
	if len(f.Channels) == 0 {
		c.q.frame(c.errorFrame(f.ID, CodeBadRequest, `"channels" must be a non-empty array of channels`))
		return
	}
	chs, bad, badMsg := parseChannels(f.Channels)
	if len(bad) > 0 {
		c.q.frame(c.errorFrame(f.ID, CodeInvalidChannel, badMsg, bad...))
		return
	}
	c.unsubscribe(chs)
	c.q.frame(encode(channelsFrame{Type: "unsubscribed", ID: f.ID, Channels: names(chs)}))
}

// covered reports whether the connection's subscriptions already include
// ch, by name or by its kind's wildcard.
func (c *Conn) covered(ch event.Channel) bool {
	if _, ok := c.subs[ch]; ok {
		return true
	}
	_, ok := c.subs[event.Channel{Kind: ch.Kind, Symbol: event.Wildcard}]
	return ok
}

func (c *Conn) unsubscribe(chs []event.Channel) {
	c.d.Hub.Unsubscribe(c, chs)
	for _, ch := range chs {
		delete(c.subs, ch)
	}
}

// parseChannels parses a frame's channel list: the channels that parse, the
// (clipped) ones that do not, and the first reason why.
func parseChannels(list []string) (chs []event.Channel, bad []string, badMsg string) {
	for _, s := range list {
		ch, err := event.ParseChannel(s)
		if err != nil {
			bad = append(bad, clip(s))
			if badMsg == "" {
				badMsg = err.Error()
			}
			continue
		}
		chs = append(chs, ch)
	}
	return chs, bad, badMsg
}

func names(chs []event.Channel) []string {
	out := make([]string, len(chs))
	for i, ch := range chs {
		out[i] = ch.String()
	}
	return out
}

// clip keeps echoed client input short.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
