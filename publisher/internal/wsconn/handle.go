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
		c.send(encode(pongFrame{Type: "pong", ID: f.ID}))
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
			code = CodeTokenExpired // docs/protocol.md: the client fetches a fresh token
		}
		if !c.authed {
			c.refused(monitor.AuthReason(err), "err", err)
		}
		c.sendError(f.ID, code, err.Error())
		// A failed renewal leaves the current token in force until it expires.
		if !c.authed {
			c.closeWith(CloseUnauthorized, "unauthorized")
		}
		return
	}
	if c.authed && ident.Subject != c.ident.Subject {
		c.sendError(f.ID, CodeUnauthorized, "token is for another user; open a new connection")
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
			c.closeWith(CloseTooManyConns, "too many connections for this user")
			return
		}
		c.userHeld = true
		c.authed = true
		if c.ws != nil {
			c.setReadDeadline(time.Now().Add(2 * c.d.Config.Heartbeat))
		}
		// Set once, before anything is queued: the writer and the ping
		// timer read it. A renewal keeps the subject.
		c.user = ident.Subject
	}
	c.ident = ident
	c.armExpiry(ident.Expires.Add(c.d.Config.Leeway))
	cfg := c.d.Config
	c.send(encode(welcomeFrame{
		Type: "welcome", ID: id, User: ident.Subject, Replica: cfg.Replica,
		HeartbeatMs: cfg.Heartbeat.Milliseconds(), MaxChannels: cfg.MaxChannels,
	}))
	var dropped []event.Channel
	for ch := range c.subs.All() {
		if !ident.Allows(ch) {
			dropped = append(dropped, ch)
		}
	}
	if len(dropped) > 0 {
		c.unsubscribe(dropped)
		c.send(encode(channelsFrame{Type: "unsubscribed", Channels: names(dropped)}))
	}
}

// budgetWait is how long a subscribe waits for the user's budget of
// history reads before it is refused with rate_limited.
const budgetWait = 2 * time.Second

// errOverBudget: the user's budget of history reads does not allow a
// subscribe's reads within budgetWait.
var errOverBudget = errors.New("over the budget of history reads")

// request is a validated subscribe.
type request struct {
	channels []event.Channel // normalised, without duplicates
	since    map[event.Channel]event.ID
	snapshot bool
	throttle time.Duration // 0: not paced
	resume   []event.ID    // an event stream's position per shard (sse.go); nil: none
}

// validate applies docs/protocol.md's checks in order; the first that fails
// names the code, and the error (sent here) lists the offending channels.
func (c *Conn) validate(f clientFrame) (request, bool) {
	if len(f.Channels) == 0 {
		c.sendError(f.ID, CodeBadRequest, `"channels" must be a non-empty array of channels`)
		return request{}, false
	}
	req := request{snapshot: f.Snapshot == nil || *f.Snapshot, resume: c.resume}
	if f.Throttle != nil && *f.Throttle != 0 {
		d := time.Duration(*f.Throttle) * time.Millisecond
		if *f.Throttle < minThrottle.Milliseconds() || *f.Throttle > maxThrottle.Milliseconds() {
			c.sendError(f.ID, CodeBadRequest, fmt.Sprintf(`"throttle_ms" must be 0 (off) or %d to %d`, minThrottle.Milliseconds(), maxThrottle.Milliseconds()))
			return request{}, false
		}
		req.throttle = d
	}
	chs, bad, badMsg := parseChannels(f.Channels)
	seen := make(map[event.Channel]bool, len(chs))
	for _, ch := range chs {
		if !seen[ch] {
			seen[ch] = true
			req.channels = append(req.channels, ch)
		}
	}
	if len(bad) > 0 {
		c.sendError(f.ID, CodeInvalidChannel, badMsg, bad...)
		return request{}, false
	}
	var forbidden []string
	for _, ch := range req.channels {
		if !c.ident.Allows(ch) {
			forbidden = append(forbidden, ch.String())
		}
	}
	if len(forbidden) > 0 {
		c.sendError(f.ID, CodeForbidden, "the token does not allow these channels", forbidden...)
		return request{}, false
	}
	var added []string
	for _, ch := range req.channels {
		if !c.subs.Has(ch) {
			added = append(added, ch.String())
		}
	}
	if c.subs.Len()+len(added) > c.d.Config.MaxChannels {
		msg := fmt.Sprintf("at most %d channels per connection; %d subscribed", c.d.Config.MaxChannels, c.subs.Len())
		c.sendError(f.ID, CodeTooManyChannels, msg, added...)
		return request{}, false
	}
	if len(f.Since) > 0 {
		req.since = make(map[event.Channel]event.ID, len(f.Since))
		for k, v := range f.Since {
			ch, err := event.ParseChannel(k)
			if err != nil || ch.IsWildcard() || !seen[ch] {
				c.sendError(f.ID, CodeBadRequest, fmt.Sprintf("since %q: must name a concrete channel listed in \"channels\"", clip(k)))
				return request{}, false
			}
			id, err := event.ParseID(v)
			if err != nil {
				c.sendError(f.ID, CodeBadRequest, fmt.Sprintf("since %s: %v", ch, err))
				return request{}, false
			}
			req.since[ch] = id
		}
	}
	return req, true
}

// handleSubscribe subscribes all of the request or nothing. New channels
// that need history are held back (their live events wait) from before
// they are subscribed until their recovery ends. The replies go out in
// docs/protocol.md's order: subscribed and gap at once, then, page by page as
// the client drains its queue, snapshot frames and replayed events, then
// the held-back live events newer than all of them.
func (c *Conn) handleSubscribe(f clientFrame) {
	req, ok := c.validate(f)
	if !ok {
		return
	}
	var fresh, held, snap []event.Channel
	for _, ch := range req.channels {
		if c.subs.Has(ch) {
			continue
		}
		fresh = append(fresh, ch)
		_, hasSince := req.since[ch]
		switch {
		case hasSince || req.resume != nil:
			held = append(held, ch)
		case req.snapshot:
			held = append(held, ch)
			snap = append(snap, ch)
		}
	}
	// Every new channel is held until the subscribed frame is queued, so
	// that no live event precedes it; those with a recovery stay held
	// until it ends.
	c.q.hold(fresh)
	c.q.setPace(fresh, req.throttle) // before their first live event
	c.d.Hub.Subscribe(c, fresh)

	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	r, first, msgs, recovered, err := c.plan(ctx, req, fresh, snap)
	if errors.Is(err, errOverBudget) {
		c.d.Hub.Unsubscribe(c, fresh)
		c.q.setPace(fresh, 0)
		c.q.abandon(fresh)
		c.sendError(f.ID, CodeRateLimited, "over this user's budget of history reads; retry the subscribe later")
		return
	}
	if err != nil {
		c.d.Hub.Unsubscribe(c, fresh)
		c.q.setPace(fresh, 0)
		c.q.abandon(fresh)
		c.logger().Warn("subscribe failed: history unavailable", "err", err)
		c.sendError(f.ID, CodeInternal, "history is unavailable right now; retry the subscribe")
		return
	}
	r.hold = held
	for _, ch := range fresh {
		c.subs.Add(ch)
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
	floor := make(map[event.Channel]event.ID, len(r.replay))
	for _, cur := range r.replay {
		floor[cur.ch] = cur.after
	}
	c.q.begin(head, floor, r, first, msgs)
	c.q.admit(without(fresh, held))
	c.q.setPace(req.channels, req.throttle) // a later subscribe sets the pace anew
	c.w.kick()
}

// plan reads what a recovery needs before it begins: whether each since
// entry is still retained, the concrete channels of the snapshot, and the
// first page of the snapshot (so that a subscribe whose history cannot be
// read fails with internal, as a whole). No snapshot for a channel resumed with since, or already
// delivered on this connection by another subscription: the latest event
// would jump over the ones between since (or the last one sent) and it.
func (c *Conn) plan(ctx context.Context, req request, fresh, snap []event.Channel) (r *recovery, first page, msgs []*hub.Message, recovered map[string]bool, err error) {
	r = &recovery{sub: c.ident.Subject}
	if req.resume != nil {
		recovered, err = c.planResume(ctx, req, r)
		return r, page{}, nil, recovered, err
	}
	since := make(map[event.Channel]event.ID)
	for _, ch := range fresh {
		if id, ok := req.since[ch]; ok {
			since[ch] = id
			r.replay = append(r.replay, cursor{ch: ch, after: id})
		}
	}
	// The reads done here (since entries, the first snapshot page) are
	// paid from the user's budget before they are done; the reader waits
	// for it a little, which slows a client that asks for too much.
	cost := len(since)
	if len(snap) > 0 {
		cost += snapshotPage
	}
	wctx, wcancel := context.WithTimeout(ctx, budgetWait)
	defer wcancel()
	if err := c.d.Hub.Reads.Wait(wctx, c.ident.Subject, cost); err != nil {
		return nil, page{}, nil, nil, errOverBudget
	}
	found, err := c.d.History.Found(ctx, since)
	if err != nil {
		return nil, page{}, nil, nil, err
	}
	for ch, ok := range found {
		if recovered == nil {
			recovered = make(map[string]bool, len(found))
		}
		recovered[ch.String()] = ok
	}
	if len(snap) == 0 {
		return r, page{}, nil, recovered, nil
	}
	concrete, err := c.d.History.Expand(ctx, snap)
	if err != nil {
		return nil, page{}, nil, nil, err
	}
	r.snap = slices.DeleteFunc(concrete, func(ch event.Channel) bool {
		_, resumed := req.since[ch]
		return resumed || c.covered(ch)
	})
	if len(r.snap) == 0 {
		return r, page{}, nil, recovered, nil
	}
	first = r.next(snapshotPage)
	if msgs, err = c.d.History.Latest(ctx, first.snap); err != nil {
		return nil, page{}, nil, nil, err
	}
	return r, first, msgs, recovered, nil
}

// handleUnsubscribe removes channels; ones not subscribed are acknowledged
// all the same.
func (c *Conn) handleUnsubscribe(f clientFrame) {
	if len(f.Channels) == 0 {
		c.sendError(f.ID, CodeBadRequest, `"channels" must be a non-empty array of channels`)
		return
	}
	chs, bad, badMsg := parseChannels(f.Channels)
	if len(bad) > 0 {
		c.sendError(f.ID, CodeInvalidChannel, badMsg, bad...)
		return
	}
	c.unsubscribe(chs)
	c.send(encode(channelsFrame{Type: "unsubscribed", ID: f.ID, Channels: names(chs)}))
}

// covered reports whether the connection's subscriptions already include
// ch, by name or by its kind's wildcard.
func (c *Conn) covered(ch event.Channel) bool {
	return c.subs.Has(ch) || c.subs.Has(event.Channel{Kind: ch.Kind, Symbol: event.Wildcard})
}

func (c *Conn) unsubscribe(chs []event.Channel) {
	c.d.Hub.Unsubscribe(c, chs)
	c.q.setPace(chs, 0)
	for _, ch := range chs {
		c.subs.Delete(ch)
	}
	// What a recovery would still send of them is not wanted any more,
	// unless another subscription covers it.
	named := make(map[event.Channel]bool, len(chs))
	for _, ch := range chs {
		named[ch] = true
	}
	c.q.drop(func(ch event.Channel) bool {
		return (named[ch] || named[event.Channel{Kind: ch.Kind, Symbol: event.Wildcard}]) && !c.covered(ch)
	})
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

// without returns the channels of all that are not in some, in order.
func without(all, some []event.Channel) []event.Channel {
	if len(some) == 0 {
		return all
	}
	skip := make(map[event.Channel]struct{}, len(some))
	for _, ch := range some {
		skip[ch] = struct{}{}
	}
	out := make([]event.Channel, 0, len(all)-len(some))
	for _, ch := range all {
		if _, ok := skip[ch]; !ok {
			out = append(out, ch)
		}
	}
	return out
}
