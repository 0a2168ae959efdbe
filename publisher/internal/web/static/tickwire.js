// tickwire.js: a dependency-free client of the tickwire protocol v1.1
// (docs/protocol.md). It is an ES module; it runs in browsers and, given a
// WebSocket implementation, in Node.
//
//   import { TickwireClient } from '/tickwire.js';
//   const tw = new TickwireClient({ token });
//   tw.on('status', (s) => console.log(s.state, s));
//   tw.connect();
//   const sub = tw.subscribe('trade:AAPL', { throttleMs: 250 });
//   sub.on('event', (ev) => console.log(ev.ch, ev.id, ev.data));
//   await sub;                                   // the subscribed frame
//   const { events } = await tw.history('bar:AAPL', { limit: 500 });
//   sub.unsubscribe();
//
// The client-wide tw.on('event', …) sees the events of every subscription.
// Types: tickwire.d.ts. Server-Sent Events (GET /v1/sse) are used when
// WebSocket fails where HTTP works (transport 'auto') or when asked
// (transport 'sse'); see _diagnose and _openSse.
//
// What it does for the page:
//   - keeps the set of subscribed patterns and, per concrete channel, the last
//     event id seen; drops any event whose id is not larger (no duplicates,
//     even across reconnects);
//   - reconnects after 1001, 1006, 4008 and any other unexpected close, with
//     exponential backoff and full jitter, and re-subscribes everything,
//     resuming with `since` every concrete channel it has seen, including
//     those seen through KIND:* (see buildResubscribe);
//   - stops on 1000 and on 4001 (token rejected or expired: emits
//     'unauthorized' with the code of the server's error frame, which the
//     server sends before 4001 for a token in the URL too); waits at least `penaltyMs` after 4000, 1009, 4009 and
//     4029, which a reconnect would only repeat;
//   - sends an application ping every heartbeat interval, and treats a
//     connection silent for two intervals as dead (browsers cannot see the
//     server's WebSocket pings).
//
// Events (listen with on(type, fn), which returns a function that removes
// the listener):
//   status       {state:'connecting', attempt}
//                {state:'open', replica, user, heartbeatMs, maxChannels}
//                {state:'reconnecting', attempt, delayMs, retryAt, code, reason}
//                {state:'closed', code, reason}
//   welcome      the welcome frame (also after a re-auth)
//   event        one EVENT {ch, id, ts, data}, live or replayed
//   snapshot     {events: [EVENT, …]}: latest event per channel, on subscribe
//   gap          {channels, reason}: events of these channels may be missing
//   subscribed   the subscribed frame
//   error        {code, message, channels, id}: an error frame, or a local one
//                (origin_refused: the server refuses this page's origin, the
//                client has stopped; websocket_failed: WebSocket fails where
//                HTTP works)
//   unauthorized {code, reason}: the server refused the token; call
//                setToken(…) and connect() again

/** Close codes of the protocol. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  PROTOCOL: 4000,
  UNAUTHORIZED: 4001,
  SLOW_CONSUMER: 4008,
  TOO_MANY_CONNECTIONS: 4009,
  RATE_LIMITED: 4029,
});

// ---------------------------------------------------------------------------
// Pure helpers, exported for tests and for callers that track ids themselves.

const ID_RE = /^(\d+)(?:-(\d+))?$/;

/** Splits a stream id "MS-SEQ" (or "MS") into two digit strings, without
 * leading zeros, or returns null if id is malformed. Numbers are kept as
 * strings: a sequence may exceed 2^53. */
export function parseId(id) {
  if (typeof id !== 'string') return null;
  const m = ID_RE.exec(id);
  if (!m) return null;
  return [stripZeros(m[1]), stripZeros(m[2] || '0')];
}

function stripZeros(s) {
  const t = s.replace(/^0+/, '');
  return t === '' ? '0' : t;
}

function compareDigits(a, b) {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares two stream ids as (MS, SEQ) numeric pairs: negative if a < b,
 * 0 if equal, positive if a > b. A malformed id sorts before every valid
 * one. */
export function compareIds(a, b) {
  const pa = parseId(a);
  const pb = parseId(b);
  if (!pa || !pb) return (pa ? 1 : 0) - (pb ? 1 : 0);
  return compareDigits(pa[0], pb[0]) || compareDigits(pa[1], pb[1]);
}

/** Reports whether id is a valid id larger than last (any valid id is newer
 * than an undefined last). */
export function isNewer(id, last) {
  if (!parseId(id)) return false;
  return last === undefined || compareIds(id, last) > 0;
}

/** Normalises a channel as the server does: kind lower case, symbol upper
 * case. It does not validate; the server does. */
export function normalizeChannel(ch) {
  const s = String(ch).trim();
  const i = s.indexOf(':');
  if (i < 0) return s.toLowerCase();
  return s.slice(0, i).toLowerCase() + ':' + s.slice(i + 1).toUpperCase();
}

/** Reports whether ch is a concrete channel (not KIND:*). */
export function isConcrete(ch) {
  return !ch.endsWith(':*') && ch !== '*';
}

/** Returns "KIND:*" for a channel "KIND:SYMBOL". */
export function wildcardOf(ch) {
  const i = ch.indexOf(':');
  return i < 0 ? '*' : ch.slice(0, i) + ':*';
}

/** Reports whether pattern (a channel or KIND:*) covers channel ch. */
export function covers(pattern, ch) {
  if (pattern === ch) return true;
  return !isConcrete(pattern) && wildcardOf(ch) === pattern;
}

/** Returns the full-jitter backoff delay of the given attempt (0 first), in
 * ms: uniform in [0, min(capMs, baseMs * 2^attempt)). */
export function backoffDelay(attempt, { baseMs = 500, capMs = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * Math.pow(2, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}

/** Tells what to do after a close with code: {reconnect, penalty, reason}.
 * penalty means the next attempt must wait at least the penalty delay. */
export function classifyClose(code) {
  switch (code) {
    case CloseCode.NORMAL:
      return { reconnect: false, penalty: false, reason: 'closed by the server' };
    case CloseCode.UNAUTHORIZED:
      return { reconnect: false, penalty: false, reason: 'unauthorized' };
    case CloseCode.GOING_AWAY:
      return { reconnect: true, penalty: false, reason: 'server going away' };
    case CloseCode.SLOW_CONSUMER:
      return { reconnect: true, penalty: false, reason: 'too slow to keep up' };
    case CloseCode.TOO_BIG:
      return { reconnect: true, penalty: true, reason: 'frame too big' };
    case CloseCode.PROTOCOL:
      return { reconnect: true, penalty: true, reason: 'protocol violations' };
    case CloseCode.TOO_MANY_CONNECTIONS:
      return { reconnect: true, penalty: true, reason: 'too many connections for this user' };
    case CloseCode.RATE_LIMITED:
      return { reconnect: true, penalty: true, reason: 'rate limited' };
    default:
      return { reconnect: true, penalty: false, reason: code === CloseCode.ABNORMAL ? 'connection lost' : 'closed (' + code + ')' };
  }
}

/** Builds the subscribe frames (without op and id) that restore a
 * subscription set on a new connection.
 *
 * patterns: Map pattern → {snapshot: bool}, in subscription order.
 * lastIds:  Map concrete channel → last id seen.
 * wildcards: 'expand' (the client's default) re-subscribes KIND:* and,
 *   beside it, each concrete channel seen through it, with since (since may
 *   only name channels of the frame), so nothing retained is missed; if that
 *   would pass maxChannels it falls back to 'snapshot', which re-subscribes
 *   KIND:* with a fresh snapshot and skips what was published meanwhile on
 *   the channels seen only through the wildcard.
 *
 * Frames that resume come first and ask for no snapshot, so a wildcard's
 * snapshot can never overtake a channel's replay; channels sent in the
 * resume frame only because of 'expand' are listed in `extra`. */
export function buildResubscribe(patterns, lastIds, { wildcards = 'expand', maxChannels = 1000, maxPerFrame = 250 } = {}) {
  // Frames are grouped by pace: throttle_ms applies to a whole subscribe.
  const resume = new Map(); // throttleMs → channels
  const since = {};
  const extra = [];
  const fresh = new Map(); // snapshot + '/' + throttleMs → channels
  const push = (m, k, ch) => (m.has(k) ? m.get(k).push(ch) : m.set(k, [ch]));
  let expand = wildcards === 'expand';
  if (expand) {
    let n = patterns.size;
    for (const ch of lastIds.keys()) {
      if (!patterns.has(ch) && patterns.has(wildcardOf(ch))) n++;
    }
    expand = n <= maxChannels;
  }
  for (const [p, opts] of patterns) {
    const t = opts.throttleMs || 0;
    const freshKey = (opts.snapshot !== false) + '/' + t;
    if (isConcrete(p)) {
      const id = lastIds.get(p);
      if (id !== undefined) {
        push(resume, t, p);
        since[p] = id;
      } else {
        push(fresh, freshKey, p);
      }
      continue;
    }
    const kids = expand ? [...lastIds.keys()].filter((ch) => covers(p, ch) && !patterns.has(ch)) : [];
    if (kids.length === 0) {
      push(fresh, freshKey, p);
      continue;
    }
    push(resume, t, p);
    for (const ch of kids) {
      push(resume, t, ch);
      extra.push(ch);
      since[ch] = lastIds.get(ch);
    }
  }
  const frames = [];
  const paced = (f, t) => (t > 0 ? { ...f, throttle_ms: t } : f);
  for (const [t, list] of resume) {
    for (const part of chunk(list, maxPerFrame)) {
      const s = {};
      for (const ch of part) if (ch in since) s[ch] = since[ch];
      frames.push(paced({ channels: part, since: s, snapshot: false }, t));
    }
  }
  for (const snap of [true, false]) {
    for (const [k, list] of fresh) {
      const [sn, t] = k.split('/');
      if ((sn === 'true') !== snap) continue;
      for (const part of chunk(list, maxPerFrame)) frames.push(paced({ channels: part, snapshot: snap }, Number(t)));
    }
  }
  return { frames, extra };
}

function chunk(list, n) {
  const out = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

/** Returns the default stream URL for the page's location, or undefined
 * outside a browser. */
export function defaultUrl(loc = globalThis.location) {
  if (!loc || !loc.host) return undefined;
  return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/v1/stream';
}

/** TickwireError is an error frame of the server, or a local failure. */
export class TickwireError extends Error {
  constructor(code, message, channels) {
    super(message || code);
    this.name = 'TickwireError';
    this.code = code;
    this.channels = channels || [];
  }
}

// ---------------------------------------------------------------------------

/** Subscription is what TickwireClient.subscribe returns: the channels of
 * one subscribe, their own listeners, and a promise of the subscribed
 * frame (it is thenable). Events it gets: event, snapshot, gap (channels
 * of this subscription only), subscribed, error (this subscribe refused). */
// Emitter holds listeners by event type; the client and each subscription
// are one.
class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Adds a listener of type; returns a function that removes it. */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** Removes a listener. */
  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  _emit(type, detail) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of set) {
      try {
        fn(detail);
      } catch (err) {
        // A failing listener must not break the protocol state.
        setTimeout(() => { throw err; });
      }
    }
  }
}

export class Subscription extends Emitter {
  constructor(client, channels) {
    super();
    this.client = client;
    this.channels = channels;
    this.active = true;
    this._ready = null;
  }

  /** Reports whether this subscription covers channel ch. */
  covers(ch) {
    return this.active && this.channels.some((p) => covers(p, ch));
  }

  /** Ends this subscription. Channels that another live subscription of
   * the client also holds stay subscribed on the wire. */
  unsubscribe() {
    if (!this.active) return Promise.resolve({ type: 'unsubscribed', channels: [] });
    this.active = false;
    this.client._subs.delete(this);
    const held = new Set();
    for (const s of this.client._subs) for (const ch of s.channels) held.add(ch);
    const gone = this.channels.filter((ch) => !held.has(ch));
    return gone.length ? this.client.unsubscribe(gone) : Promise.resolve({ type: 'unsubscribed', channels: [] });
  }

  then(onFulfilled, onRejected) {
    return this._ready.then(onFulfilled, onRejected);
  }

  catch(onRejected) {
    return this._ready.catch(onRejected);
  }
}

const MAX_FRAME = 60 * 1024; // under the server's 64 KiB limit

/** TickwireClient is one logical connection to a tickwire publisher that
 * survives reconnects. It is not meant to be shared between tabs; every
 * method is called on the page's single JavaScript thread. */
export class TickwireClient extends Emitter {
  /**
   * @param {object} opts
   * @param {string} [opts.url] ws(s)://host/v1/stream; default from location
   * @param {string|function():(string|Promise<string>)} opts.token the JWT, or
   *   a function called before every connect
   * @param {'query'|'frame'} [opts.auth] send the token as access_token
   *   (default) or in a first {"op":"auth"} frame, which keeps it out of
   *   URLs and logs
   * @param {'expand'|'snapshot'} [opts.wildcards] how KIND:* resumes; see
   *   buildResubscribe. 'expand' (default) misses nothing retained;
   *   'snapshot' skips what a wildcard published while disconnected
   * @param {number} [opts.baseMs] backoff base (500)
   * @param {number} [opts.capMs] backoff cap (30000)
   * @param {number} [opts.penaltyMs] minimum wait after 4000/1009/4009/4029 (10000)
   * @param {number} [opts.connectTimeoutMs] give up on a handshake after (10000)
   * @param {number} [opts.stableMs] an open connection resets the backoff after (5000)
   * @param {function} [opts.WebSocket] WebSocket constructor (default: global)
   *   The url may also be a list: each reconnect tries the next one, so a
   *   page can name every replica it may use.
   * @param {'auto'|'websocket'|'sse'} [opts.transport] 'auto' (default):
   *   WebSocket, and Server-Sent Events (GET /v1/sse) when WebSocket fails
   *   before opening probeAfter times in a row while the server answers
   *   HTTP (a proxy that blocks WebSocket); 'sse' forces it; 'websocket'
   *   never falls back
   * @param {number} [opts.probeAfter] failures before opening that make the
   *   client look into why (3): see _diagnose
   * @param {function} [opts.fetch] fetch (default: global), for history()
   *   and the diagnosis
   * @param {function} [opts.EventSource] EventSource constructor (default: global)
   */
  constructor(opts = {}) {
    super();
    this.urls = [].concat(opts.url || defaultUrl() || []);
    this.url = this.urls[0];
    this.transport = ['sse', 'websocket'].includes(opts.transport) ? opts.transport : 'auto';
    this.probeAfter = opts.probeAfter ?? 3;
    this.fetch = opts.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis));
    this.EventSource = opts.EventSource || globalThis.EventSource;
    /** 'websocket' or 'sse': what the client uses now. */
    this.using = this.transport === 'sse' ? 'sse' : 'websocket';
    this._failsBeforeOpen = 0;
    this._diagnosing = false;
    this._es = null;
    this._token = opts.token;
    this.authMode = opts.auth === 'frame' ? 'frame' : 'query';
    this.wildcards = opts.wildcards === 'snapshot' ? 'snapshot' : 'expand';
    this.backoff = { baseMs: opts.baseMs ?? 500, capMs: opts.capMs ?? 30000 };
    this.penaltyMs = opts.penaltyMs ?? 10000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10000;
    this.stableMs = opts.stableMs ?? 5000;
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;

    this.state = 'idle';
    /** The last welcome frame, or null. */
    this.welcome = null;
    /** Counters: events delivered, duplicates dropped, connections opened. */
    this.stats = { events: 0, dropped: 0, connects: 0 };

    this._patterns = new Map(); // pattern → {snapshot, throttleMs}
    this._subs = new Set(); // live Subscriptions
    this._lastIds = new Map(); // concrete channel → last id seen
    this._extra = new Set(); // concrete channels subscribed only to resume a wildcard
    this._pending = new Map(); // request id → {kind, resolve, reject, ...}
    this._queued = []; // subscribes waiting for a connection
    this._nextId = 1;
    this._attempt = 0;
    this._ws = null;
    this._gen = 0; // generation of the current socket; stale callbacks are ignored
    this._timers = {};
    this._stopped = true;
  }

  // --- public API ---------------------------------------------------------

  /** Connects (and keeps reconnecting until close()). Calling it while
   * connected does nothing; while waiting to reconnect, it retries now. */
  connect() {
    this._stopped = false;
    if (this.state === 'connecting' || this.state === 'open') return;
    this._clearTimer('retry');
    this._open();
  }

  /** Retries now if a reconnect is scheduled. */
  reconnectNow() {
    if (this.state === 'reconnecting') this.connect();
  }

  /** Closes the connection for good (until connect()). Subscriptions and
   * last ids are kept, so a later connect() resumes. */
  close(reason = 'closed by the client') {
    this._stopped = true;
    this._clearAllTimers();
    this._dropSocket(1000, reason);
    this._failPending(new TickwireError('closed', reason));
    this._setState({ state: 'closed', code: 1000, reason });
  }

  /** Sets the token used by the next connect. */
  setToken(token) {
    this._token = token;
  }

  /** Sends a fresh token on the open connection (before the old one
   * expires); resolves with the new welcome. */
  reauth(token) {
    this._token = token;
    return new Promise((resolve, reject) => {
      if (!this._ready) return reject(new TickwireError('not_connected', 'not connected'));
      this._pending.set('auth', { kind: 'auth', resolve, reject });
      this._send({ op: 'auth', id: 'auth', token });
    });
  }

  /** Subscribes to channels (concrete or KIND:*) and returns a
   * Subscription: listen to its own events with sub.on('event', fn), end it
   * with sub.unsubscribe(). The Subscription is also a promise (await it,
   * or .then/.catch) of the subscribed frame; it rejects with a
   * TickwireError (code invalid_channel, forbidden, too_many_channels, …)
   * and then nothing is subscribed. Called while disconnected, it is sent
   * after the next connect.
   * opts.since: {channel: id} to resume channels from known ids (a string
   *   id is taken for the only channel);
   * opts.snapshot: false to skip the snapshot;
   * opts.throttleMs: 50 to 60000, the server's pace for these channels
   *   (throttle_ms; quotes and bars conflated per window). */
  subscribe(channels, { snapshot = true, since, throttleMs } = {}) {
    const list = [...new Set([].concat(channels).map(normalizeChannel))];
    if (typeof since === 'string' && list.length === 1) since = { [list[0]]: since };
    const sinceMap = {};
    for (const [ch, id] of Object.entries(since || {})) {
      const n = normalizeChannel(ch);
      sinceMap[n] = id;
      if (isNewer(id, this._lastIds.get(n))) this._lastIds.set(n, id);
    }
    const sub = new Subscription(this, list);
    sub._ready = new Promise((resolve, reject) => {
      const req = { kind: 'subscribe', channels: list, snapshot, since: sinceMap, throttleMs: throttleMs || 0, resolve, reject, sub };
      if (this._ready) this._sendSubscribe(req);
      else this._queued.push(req);
    });
    // A refused subscribe is reported by the promise; the Subscription
    // forgets itself without an unhandled rejection if nobody awaits it.
    sub._ready.catch(() => this._subs.delete(sub));
    this._subs.add(sub);
    return sub;
  }

  /** Unsubscribes channels (as they were subscribed). Forgets the last ids
   * of channels no longer covered. Resolves when the server confirms, or at
   * once when disconnected. */
  unsubscribe(channels) {
    const list = [...new Set([].concat(channels).map(normalizeChannel))];
    for (const p of list) this._patterns.delete(p);
    // Subscribes not yet confirmed lose these channels too; one left with
    // none is settled as canceled.
    const gone = new Set(list);
    for (const p of this._pending.values()) {
      if (p.kind === 'subscribe') p.channels = p.channels.filter((ch) => !gone.has(ch));
    }
    this._queued = this._queued.filter((q) => {
      q.channels = q.channels.filter((ch) => !gone.has(ch));
      if (q.channels.length === 0) q.reject(new TickwireError('canceled', 'unsubscribed before subscribing'));
      return q.channels.length > 0;
    });
    const wire = [...list];
    for (const ch of [...this._extra]) {
      if (!this._covered(ch)) {
        this._extra.delete(ch);
        wire.push(ch);
      }
    }
    for (const ch of [...this._lastIds.keys()]) {
      if (!this._covered(ch)) this._lastIds.delete(ch);
    }
    return new Promise((resolve, reject) => {
      if (!this._ready) return resolve({ type: 'unsubscribed', channels: list });
      if (this.using === 'sse') {
        this._sseReopen();
        return resolve({ type: 'unsubscribed', channels: list });
      }
      const id = this._id();
      this._pending.set(id, { kind: 'unsubscribe', resolve, reject });
      this._send({ op: 'unsubscribe', id, channels: wire });
    });
  }

  /** Fetches retained events of one concrete channel, oldest first, with
   * GET /v1/history: opts.limit (1 to 1000, default 100), opts.after or
   * opts.before (an event id, to page forward or back). Resolves with
   * {channel, events}; rejects with a TickwireError whose code is the
   * server's (bad_request, invalid_channel, unauthorized, token_expired,
   * forbidden, rate_limited, …) and whose status is the HTTP status. It
   * does not touch the live subscription state. */
  async history(channel, { limit, after, before, signal } = {}) {
    if (!this.fetch) throw new TickwireError('no_fetch', 'no fetch implementation');
    if (!this.url) throw new TickwireError('no_url', 'no server URL');
    const token = typeof this._token === 'function' ? await this._token() : this._token;
    const q = new URLSearchParams({ channel: normalizeChannel(channel) });
    if (limit !== undefined) q.set('limit', String(limit));
    if (after !== undefined) q.set('after', after);
    if (before !== undefined) q.set('before', before);
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    let resp;
    try {
      resp = await this.fetch(httpUrl(this.url, '/v1/history?' + q), { headers, signal, cache: 'no-store', credentials: 'omit' });
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new TickwireError('network', 'history request failed: ' + (err && err.message));
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (err) {
      body = null;
    }
    if (!resp.ok) {
      const e = new TickwireError((body && body.code) || 'http_' + resp.status, (body && body.message) || 'HTTP ' + resp.status);
      e.status = resp.status;
      throw e;
    }
    return { channel: body.channel, events: body.events || [] };
  }

  /** Sends a ping; resolves with the round trip in ms. */
  ping() {
    return new Promise((resolve, reject) => {
      if (this.using === 'sse') return reject(new TickwireError('not_supported', 'no ping over Server-Sent Events'));
      if (!this._ready) return reject(new TickwireError('not_connected', 'not connected'));
      const id = this._id();
      this._pingSentAt = Date.now();
      this._pending.set(id, { kind: 'ping', sent: this._pingSentAt, resolve, reject });
      this._send({ op: 'ping', id });
    });
  }

  /** The subscribed patterns. */
  get subscriptions() {
    return [...this._patterns.keys()];
  }

  /** The last event id seen per concrete channel, as a plain object. */
  get lastIds() {
    return Object.fromEntries(this._lastIds);
  }

  // --- connection ---------------------------------------------------------

  async _open() {
    const gen = ++this._gen;
    this._ready = false;
    this._setState({ state: 'connecting', attempt: this._attempt });
    let token;
    try {
      token = typeof this._token === 'function' ? await this._token() : this._token;
    } catch (err) {
      token = undefined;
    }
    if (gen !== this._gen || this._stopped) return;
    if (!token) {
      this._stopped = true;
      this._emit('unauthorized', { code: 'no_token', reason: 'no token' });
      this._setState({ state: 'closed', code: CloseCode.UNAUTHORIZED, reason: 'no token' });
      return;
    }
    if (this.using === 'sse') return this._openSse(gen, token);
    if (!this.url || !this.WebSocket) {
      this._stopped = true;
      this._setState({ state: 'closed', code: 0, reason: 'no URL or no WebSocket implementation' });
      return;
    }
    const url = this.authMode === 'query' ? withToken(this.url, token) : this.url;
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._onClose(gen, { code: CloseCode.ABNORMAL, reason: String(err && err.message) }, false);
      return;
    }
    this._ws = ws;
    let opened = false;
    this._timer('connect', this.connectTimeoutMs, () => {
      if (gen === this._gen && !opened) this._abandon('handshake timed out');
    });
    ws.onopen = () => {
      if (gen !== this._gen) return;
      opened = true;
      this._failsBeforeOpen = 0;
      this._clearTimer('connect');
      this._lastFrameAt = Date.now();
      this.stats.connects++;
      if (this.authMode === 'frame') {
        this._send({ op: 'auth', token });
      } else {
        this._ready = true;
        this._restore();
        // The server greets a connection authenticated on the upgrade with a
        // welcome; should one not come, the connection works all the same.
        this._timer('welcome', 2000, () => this._opened({}));
      }
      this._heartbeat(20000);
    };
    ws.onmessage = (msg) => {
      if (gen === this._gen) this._onFrame(msg.data);
    };
    ws.onclose = (ev) => this._onClose(gen, ev, opened);
    ws.onerror = () => {}; // onclose follows and carries the code
  }

  _onClose(gen, ev, opened) {
    if (gen !== this._gen) return;
    this._gen++;
    this._ws = null;
    this._ready = false;
    for (const t of ['connect', 'welcome', 'ping', 'stable']) this._clearTimer(t);
    this._requeuePending();
    if (this._stopped) return;

    const code = ev.code || CloseCode.ABNORMAL;
    const what = classifyClose(code);
    const reason = ev.reason || what.reason;
    if (code === CloseCode.UNAUTHORIZED) {
      return this._unauthorized(this._authError || 'unauthorized', ev.reason || this._authMessage || what.reason);
    }
    this._authError = undefined;
    if (!opened) this._failsBeforeOpen++;
    if (this.urls.length > 1) this.url = this.urls[(this.urls.indexOf(this.url) + 1) % this.urls.length];
    if (!opened && this._failsBeforeOpen >= this.probeAfter) this._diagnose();
    if (!what.reconnect) {
      this._stopped = true;
      this._failPending(new TickwireError('closed', reason));
      this._setState({ state: 'closed', code, reason });
      return;
    }
    // A refused token never reaches here: since protocol v1.1 the server
    // upgrades, sends the error frame and closes with 4001 (above), so a
    // browser reads why without asking over plain HTTP.
    this._schedule(code, reason, what.penalty);
  }

  // _unauthorized stops for a token problem. Subscribes waiting for an
  // answer stay queued: the page is expected to set a new token and
  // connect() again, and they go out then.
  _unauthorized(code, reason) {
    this._stopped = true;
    this._authError = this._authMessage = undefined;
    this._requeuePending();
    this._emit('unauthorized', { code, reason });
    this._setState({ state: 'closed', code: CloseCode.UNAUTHORIZED, reason: code === 'token_expired' ? 'token expired' : reason });
  }

  _schedule(code, reason, penalty) {
    let delayMs = backoffDelay(this._attempt, this.backoff);
    if (penalty) delayMs = Math.max(delayMs, Math.floor(this.penaltyMs * (0.5 + Math.random() / 2)));
    this._attempt++;
    this._setState({ state: 'reconnecting', attempt: this._attempt, delayMs, retryAt: Date.now() + delayMs, code, reason });
    this._timer('retry', delayMs, () => this._open());
  }

  // _abandon gives up on the current socket without waiting for a closing
  // handshake that a dead network would never finish.
  _abandon(reason) {
    this._dropSocket(4000, reason);
    this._onClose(this._gen, { code: CloseCode.ABNORMAL, reason }, true);
  }

  _dropSocket(code, reason) {
    if (this._es) {
      this._es.close();
      this._es = null;
    }
    const ws = this._ws;
    this._ws = null;
    this._gen++;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason.slice(0, 100));
    } catch (err) {
      // already closed
    }
  }

  _heartbeat(intervalMs) {
    this._pingEvery = intervalMs;
    this._clearTimer('ping');
    this._pingSentAt = 0;
    const tick = () => {
      // Dead only if the ping of the previous tick is still unanswered: a
      // background tab's timers may fire late, frames arrive on time.
      if (this._pingSentAt > this._lastFrameAt) return this._abandon('no answer from the server');
      this.ping().catch(() => {});
      this._timer('ping', this._pingEvery, tick);
    };
    this._timer('ping', this._pingEvery, tick);
  }

  _setState(status) {
    this.state = status.state;
    this._emit('status', status);
  }

  // --- frames -------------------------------------------------------------

  _send(obj) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  _id() {
    return String(this._nextId++);
  }

  _onFrame(text) {
    this._lastFrameAt = Date.now();
    let f;
    try {
      f = JSON.parse(text);
    } catch (err) {
      this._emit('error', { code: 'bad_frame', message: 'unparsable frame from the server' });
      return;
    }
    switch (f && f.type) {
      case 'welcome':
        return this._onWelcome(f);
      case 'subscribed':
        return this._onSubscribed(f);
      case 'unsubscribed':
        if (f.id === undefined || !this._pending.has(f.id)) return this._revoked(f.channels || []);
        return this._resolve(f.id, f);
      case 'snapshot': {
        const events = (f.events || []).filter((ev) => this._accept(ev));
        if (events.length) this._emit('snapshot', { events });
        for (const sub of this._subs) {
          const mine = events.filter((ev) => sub.covers(ev.ch));
          if (mine.length) sub._emit('snapshot', { events: mine });
        }
        return;
      }
      case 'events':
        for (const ev of f.events || []) {
          if (!this._accept(ev)) continue;
          this._emit('event', ev);
          for (const sub of this._subs) if (sub.covers(ev.ch)) sub._emit('event', ev);
        }
        return;
      case 'gap': {
        const gap = { channels: f.channels || [], reason: f.reason || '' };
        this._emit('gap', gap);
        for (const sub of this._subs) {
          const mine = gap.channels.filter((ch) => sub.covers(ch) || sub.channels.includes(ch));
          if (mine.length) sub._emit('gap', { channels: mine, reason: gap.reason });
        }
        return;
      }
      case 'pong': {
        const p = this._take(f.id);
        if (p) p.resolve(Date.now() - p.sent);
        return;
      }
      case 'error':
        return this._onError(f);
      default:
        // Unknown frame types are ignored: newer servers may add some.
        return;
    }
  }

  _onWelcome(f) {
    this.welcome = f;
    this._emit('welcome', f);
    const auth = this._take('auth');
    if (auth) auth.resolve(f);
    if (f.heartbeat_ms > 0 && f.heartbeat_ms !== this._pingEvery) this._heartbeat(f.heartbeat_ms);
    if (!this._ready) {
      this._ready = true;
      this._restore();
    }
    this._opened(f);
  }

  _opened(welcome) {
    this._clearTimer('welcome');
    if (this.state === 'open') return;
    this._setState({
      state: 'open',
      replica: welcome.replica,
      user: welcome.user,
      heartbeatMs: welcome.heartbeat_ms,
      maxChannels: welcome.max_channels,
    });
    this._timer('stable', this.stableMs, () => {
      this._attempt = 0;
    });
  }

  _onSubscribed(f) {
    const p = this._take(f.id);
    if (!p) return;
    if (p.kind === 'subscribe') {
      for (const ch of p.channels) {
        // A later subscribe of the same channel sets its pace anew.
        const prev = this._patterns.get(ch);
        this._patterns.set(ch, { snapshot: prev ? prev.snapshot : p.snapshot, throttleMs: p.throttleMs || 0 });
      }
    } else if (p.kind === 'restore') {
      for (const ch of p.extra) this._extra.add(ch);
    }
    this._emit('subscribed', f);
    if (p.sub) p.sub._emit('subscribed', f);
    p.resolve(f);
  }

  // _revoked handles an unsubscribed frame the client did not ask for: a
  // renewed token no longer allows these channels.
  _revoked(channels) {
    for (const ch of channels) {
      this._patterns.delete(ch);
      this._extra.delete(ch);
    }
    for (const ch of [...this._lastIds.keys()]) {
      if (!this._covered(ch)) this._lastIds.delete(ch);
    }
    this._emit('error', { code: 'forbidden', message: 'no longer allowed by the token', channels });
  }

  _onError(f) {
    const err = new TickwireError(f.code, f.message, f.channels);
    if (f.code === 'unauthorized' || f.code === 'token_expired') {
      this._authError = f.code;
      this._authMessage = f.message;
    }
    let p = f.id !== undefined ? this._take(f.id) : undefined;
    if (!p && this._authError) p = this._take('auth');
    if (p && p.kind === 'restore') this._retryRestore(p, err);
    else if (p) {
      if (p.sub) p.sub._emit('error', err);
      p.reject(err);
    }
    this._emit('error', { code: f.code, message: f.message || '', channels: f.channels || [], id: f.id });
  }

  // _accept tracks the last id per channel and refuses duplicates, stale
  // events and events of channels no longer subscribed.
  _accept(ev) {
    if (!ev || typeof ev.ch !== 'string' || !this._covered(ev.ch)) return false;
    if (!isNewer(ev.id, this._lastIds.get(ev.ch))) {
      this.stats.dropped++;
      return false;
    }
    this._lastIds.set(ev.ch, ev.id);
    this.stats.events++;
    return true;
  }

  _covered(ch) {
    return this._patterns.has(ch) || this._patterns.has(wildcardOf(ch)) || this._inFlight(ch);
  }

  // _inFlight reports whether ch is in a subscribe awaiting its reply: the
  // reply comes before any event, but a caller's own since may name it.
  _inFlight(ch) {
    for (const p of this._pending.values()) {
      if (p.kind === 'subscribe' && (p.channels.includes(ch) || p.channels.includes(wildcardOf(ch)))) return true;
    }
    return false;
  }

  // _restore re-subscribes everything on a new connection, then sends the
  // subscribes that waited for it.
  _restore() {
    this._extra.clear();
    const { frames, extra } = buildResubscribe(this._patterns, this._lastIds, {
      wildcards: this.wildcards,
      maxChannels: (this.welcome && this.welcome.max_channels) || 1000,
    });
    const extraSet = new Set(extra);
    for (const frame of frames) {
      this._sendRestore(frame, frame.channels.filter((ch) => extraSet.has(ch)));
    }
    const queued = this._queued;
    this._queued = [];
    for (const req of queued) this._sendSubscribe(req);
  }

  _sendRestore(frame, extra) {
    const id = this._id();
    this._pending.set(id, { kind: 'restore', frame, extra, resolve: () => {}, reject: () => {} });
    this._send({ op: 'subscribe', id, ...frame });
  }

  // _retryRestore drops the channels the server refused from a restore
  // frame (they were allowed before: the token changed) and sends the rest.
  _retryRestore(p, err) {
    const bad = new Set(err.channels);
    if (bad.size === 0) return;
    for (const ch of bad) {
      this._patterns.delete(ch);
      this._lastIds.delete(ch);
    }
    const channels = p.frame.channels.filter((ch) => !bad.has(ch));
    if (channels.length === 0 || channels.length === p.frame.channels.length) return;
    const frame = { ...p.frame, channels };
    if (frame.since) {
      frame.since = Object.fromEntries(Object.entries(frame.since).filter(([ch]) => !bad.has(ch)));
    }
    this._sendRestore(frame, p.extra.filter((ch) => !bad.has(ch)));
  }

  _sendSubscribe(req) {
    if (this.using === 'sse') return this._sseSubscribe(req);
    const id = this._id();
    const frame = { op: 'subscribe', id, channels: req.channels, snapshot: req.snapshot };
    if (Object.keys(req.since).length) frame.since = req.since;
    if (req.throttleMs > 0) frame.throttle_ms = req.throttleMs;
    const text = JSON.stringify(frame);
    if (text.length > MAX_FRAME) {
      req.reject(new TickwireError('bad_request', 'subscribe frame over 60 KiB: subscribe in smaller parts'));
      return;
    }
    this._pending.set(id, req);
    this._ws.send(text);
  }

  _take(id) {
    const p = this._pending.get(id);
    if (p) this._pending.delete(id);
    return p;
  }

  _resolve(id, value) {
    const p = this._take(id);
    if (p) p.resolve(value);
  }

  // _requeuePending handles the requests a lost connection leaves without a
  // reply: unconfirmed subscribes are sent again after the reconnect,
  // unsubscribes are done (the new connection will not have them), pings
  // and re-auths fail.
  _requeuePending() {
    const pending = [...this._pending.values()];
    this._pending.clear();
    const requeue = [];
    for (const p of pending) {
      if (p.kind === 'subscribe') requeue.push(p);
      else if (p.kind === 'unsubscribe') p.resolve({ type: 'unsubscribed' });
      else if (p.kind !== 'restore') p.reject(new TickwireError('not_connected', 'connection lost'));
    }
    this._queued = requeue.concat(this._queued);
  }

  _failPending(err) {
    this._requeuePending();
    for (const req of this._queued) req.reject(err);
    this._queued = [];
  }

  // --- diagnosis and Server-Sent Events -------------------------------------

  // _diagnose looks into repeated WebSocket failures before opening. A
  // browser shows a refused upgrade (HTTP 403 for an origin that is not
  // allowed, or a proxy blocking WebSocket) only as a failed socket, so the
  // client asks over HTTP for /tickwire.js, which the server serves with
  // CORS headers for exactly the origins it allows:
  //   - a CORS fetch fails but an opaque (no-cors) one succeeds: the server
  //     is up and refuses this page's origin. The client stops and emits
  //     error {code: 'origin_refused'}: retrying cannot help.
  //   - both fail: the server is unreachable; keep retrying.
  //   - the CORS fetch succeeds: HTTP works and WebSocket does not (a proxy,
  //     or a same-origin page refused by an explicit origin list, which no
  //     fetch can tell). With transport 'auto' the client switches to
  //     Server-Sent Events; otherwise it emits error {code:
  //     'websocket_failed'} once and keeps retrying.
  async _diagnose() {
    if (this._diagnosing || !this.fetch || !this.url) return;
    this._diagnosing = true;
    const u = httpUrl(this.url, '/tickwire.js');
    let verdict = 'unreachable';
    try {
      await this.fetch(u, { mode: 'cors', cache: 'no-store', credentials: 'omit' });
      verdict = 'http_ok';
    } catch (err) {
      try {
        await this.fetch(u, { mode: 'no-cors', cache: 'no-store', credentials: 'omit' });
        verdict = 'origin_refused';
      } catch (err2) {
        verdict = 'unreachable';
      }
    }
    this._diagnosing = false;
    if (this._stopped || this.state === 'open' || this.using === 'sse') return;
    if (verdict === 'origin_refused') {
      this._stopped = true;
      this._clearAllTimers();
      this._dropSocket(1000, 'origin refused');
      const origin = (globalThis.location && globalThis.location.origin) || 'this page';
      const message = 'the server does not allow ' + origin + ' (PUBLISHER_ALLOWED_ORIGINS)';
      this._emit('error', { code: 'origin_refused', message, channels: [] });
      this._setState({ state: 'closed', code: 0, reason: 'origin not allowed by the server' });
    } else if (verdict === 'http_ok' && this.transport === 'auto' && this.EventSource) {
      this._emit('error', { code: 'websocket_failed', message: 'WebSocket fails where HTTP works: using Server-Sent Events', channels: [] });
      this.using = 'sse';
      this._clearTimer('retry');
      this._dropSocket(1000, 'switching to SSE');
      this._open();
    } else if (verdict === 'http_ok' && !this._warnedWs) {
      this._warnedWs = true;
      this._emit('error', { code: 'websocket_failed', message: 'WebSocket fails where HTTP works (a proxy, or an origin not allowed)', channels: [] });
    }
  }

  // _openSse serves the subscriptions over one EventSource on /v1/sse.
  // Limits, stated in the README: one pace (the smallest throttleMs) for
  // the stream; a change of subscriptions opens a new stream, which
  // starts with snapshots (the browser's Last-Event-ID resume covers the
  // reconnects of one stream only); no ping.
  _openSse(gen, token) {
    if (!this.url || !this.EventSource) {
      this._stopped = true;
      this._setState({ state: 'closed', code: 0, reason: 'no URL or no EventSource implementation' });
      return;
    }
    this._ready = true;
    const queued = this._queued;
    this._queued = [];
    for (const req of queued) this._sseSubscribe(req, false);
    const channels = [...this._patterns.keys()];
    if (channels.length === 0) {
      this._setState({ state: 'open', transport: 'sse' });
      return;
    }
    const q = new URLSearchParams({ channels: channels.join(','), access_token: token });
    const paces = [...this._patterns.values()].map((o) => o.throttleMs || 0).filter((t) => t > 0);
    if (paces.length) q.set('throttle_ms', String(Math.min(...paces)));
    const es = new this.EventSource(httpUrl(this.url, '/v1/sse?' + q));
    this._es = es;
    es.onopen = () => {
      if (gen !== this._gen) return;
      this.stats.connects++;
      this._failsBeforeOpen = 0;
      this._lastFrameAt = Date.now();
      if (this.state !== 'open') this._setState({ state: 'open', transport: 'sse' });
    };
    for (const type of ['snapshot', 'events', 'gap']) {
      es.addEventListener(type, (m) => gen === this._gen && this._onFrame(m.data));
    }
    es.addEventListener('error', (m) => {
      if (gen !== this._gen) return;
      if (m && typeof m.data === 'string') return this._onFrame(m.data); // the server's error frame
      if (es.readyState !== 2) return; // the browser reconnects by itself, with Last-Event-ID
      // Closed for good (an HTTP error, e.g. 401): start a new stream later.
      es.close();
      this._es = null;
      this._gen++;
      this._ready = false;
      if (this._authError) return this._unauthorized(this._authError, this._authMessage || 'unauthorized');
      this._schedule(CloseCode.ABNORMAL, 'event stream failed', false);
    });
  }

  // _sseSubscribe takes a subscribe over SSE: there is no reply frame, so
  // it is confirmed at once, and the stream is opened again with it.
  _sseSubscribe(req, reopen = true) {
    const f = { type: 'subscribed', channels: req.channels, recovered: {} };
    for (const ch of req.channels) {
      const prev = this._patterns.get(ch);
      this._patterns.set(ch, { snapshot: prev ? prev.snapshot : req.snapshot, throttleMs: req.throttleMs || 0 });
    }
    this._emit('subscribed', f);
    if (req.sub) req.sub._emit('subscribed', f);
    req.resolve(f);
    if (reopen) this._sseReopen();
  }

  _sseReopen() {
    this._timer('sse-reopen', 0, () => {
      if (this._stopped || this.using !== 'sse') return;
      this._dropSocket(1000, 'subscriptions changed');
      this._open();
    });
  }

  // --- timers -------------------------------------------------------------

  _timer(name, ms, fn) {
    this._clearTimer(name);
    this._timers[name] = setTimeout(() => {
      delete this._timers[name];
      fn();
    }, ms);
  }

  _clearTimer(name) {
    if (this._timers[name] !== undefined) {
      clearTimeout(this._timers[name]);
      delete this._timers[name];
    }
  }

  _clearAllTimers() {
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
  }
}

/** Returns the http(s) URL of path on the host of a ws(s) stream URL. */
export function httpUrl(wsUrl, path) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return u.origin + path;
}

/** Returns url with the access_token query parameter set. */
export function withToken(url, token) {
  const sep = url.includes('?') ? '&' : '?';
  return url + sep + 'access_token=' + encodeURIComponent(token);
}
