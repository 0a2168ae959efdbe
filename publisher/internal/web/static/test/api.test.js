// Tests of the v1.1 API of tickwire.js: Subscription objects, throttleMs,
// history(), the origin diagnosis, the SSE fallback and URL lists, driven
// through fake WebSocket, fetch and EventSource. Run: node --test test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TickwireClient, Subscription, buildResubscribe, httpUrl } from '../tickwire.js';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }
  frame(obj) {
    this.onmessage && this.onmessage({ data: JSON.stringify(obj) });
  }
  drop(code) {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason: '' });
  }
  ops(op) {
    return this.sent.filter((f) => f.op === op);
  }
}

class FakeEventSource {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = {};
    FakeEventSource.all.push(this);
  }
  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }
  close() {
    this.readyState = 2;
    this.closed = true;
  }
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }
  message(type, obj) {
    for (const fn of this.listeners[type] || []) fn({ data: JSON.stringify(obj) });
  }
}

const until = async (cond, what) => {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail('timed out waiting for ' + what);
};

function newClient(extra = {}) {
  FakeSocket.all = [];
  FakeEventSource.all = [];
  const client = new TickwireClient({
    url: 'ws://example.test/v1/stream',
    token: 'tok',
    WebSocket: FakeSocket,
    EventSource: FakeEventSource,
    fetch: async () => {
      throw new Error('no fetch in this test');
    },
    baseMs: 1,
    capMs: 4,
    ...extra,
  });
  const errors = [];
  client.on('error', (e) => errors.push(e));
  return { client, errors };
}

async function openSocket(client, i = 0) {
  await until(() => FakeSocket.all.length > i, 'socket ' + i);
  const ws = FakeSocket.all[i];
  ws.open();
  ws.frame({ type: 'welcome', user: 'u', replica: 'pub-' + (i + 1), heartbeat_ms: 20000, max_channels: 1000 });
  return ws;
}

const ev = (ch, id) => ({ ch, id, ts: 1, data: {} });

test('subscribe returns a Subscription with its own events, and is a promise', async () => {
  const { client } = newClient();
  client.connect();
  const ws = await openSocket(client);
  const trades = client.subscribe('trade:aapl', { throttleMs: 250, since: '5-0' });
  const quotes = client.subscribe(['quote:*']);
  assert.ok(trades instanceof Subscription);
  const [f1, f2] = ws.ops('subscribe');
  assert.deepEqual(f1.channels, ['trade:AAPL']);
  assert.equal(f1.throttle_ms, 250);
  assert.deepEqual(f1.since, { 'trade:AAPL': '5-0' });
  assert.equal(f2.throttle_ms, undefined);
  const got = { trades: [], quotes: [], snapQuotes: [] };
  trades.on('event', (e) => got.trades.push(e.id));
  quotes.on('event', (e) => got.quotes.push(e.ch));
  quotes.on('snapshot', ({ events }) => got.snapQuotes.push(...events.map((e) => e.ch)));
  ws.frame({ type: 'subscribed', id: f1.id, channels: ['trade:AAPL'], recovered: { 'trade:AAPL': true } });
  ws.frame({ type: 'subscribed', id: f2.id, channels: ['quote:*'] });
  const frame = await trades;
  assert.deepEqual(frame.recovered, { 'trade:AAPL': true });
  ws.frame({ type: 'snapshot', events: [ev('quote:MSFT', '1-0')] });
  ws.frame({ type: 'events', events: [ev('trade:AAPL', '6-0'), ev('quote:AAPL', '6-1'), ev('trade:AAPL', '5-0')] });
  assert.deepEqual(got, { trades: ['6-0'], quotes: ['quote:AAPL'], snapQuotes: ['quote:MSFT'] });

  // A reconnect keeps the pace and resumes with since.
  ws.drop(1006);
  const ws2 = await openSocket(client, 1);
  const restore = ws2.ops('subscribe');
  const t = restore.find((f) => f.channels.includes('trade:AAPL'));
  assert.equal(t.throttle_ms, 250);
  assert.deepEqual(t.since, { 'trade:AAPL': '6-0' });
  assert.equal(restore.find((f) => f.channels.includes('quote:*')).throttle_ms, undefined);

  // unsubscribe ends the subscription; its listeners hear nothing more.
  const done = trades.unsubscribe();
  const [u] = ws2.ops('unsubscribe');
  assert.deepEqual(u.channels, ['trade:AAPL']);
  ws2.frame({ type: 'unsubscribed', id: u.id, channels: ['trade:AAPL'] });
  await done;
  ws2.frame({ type: 'events', events: [ev('trade:AAPL', '9-0')] });
  assert.deepEqual(got.trades, ['6-0']);
  assert.deepEqual(client.subscriptions, ['quote:*']);
  client.close();
});

test('a channel held by two subscriptions stays until both end', async () => {
  const { client } = newClient();
  client.connect();
  const ws = await openSocket(client);
  const a = client.subscribe('bar:AAPL');
  const b = client.subscribe('bar:AAPL');
  for (const f of ws.ops('subscribe')) ws.frame({ type: 'subscribed', id: f.id, channels: f.channels });
  await Promise.all([a, b]);
  await a.unsubscribe();
  assert.equal(ws.ops('unsubscribe').length, 0);
  const done = b.unsubscribe();
  const [u] = ws.ops('unsubscribe');
  ws.frame({ type: 'unsubscribed', id: u.id, channels: u.channels });
  await done;
  client.close();
});

test('a refused subscribe rejects the Subscription and tells its listeners', async () => {
  const { client } = newClient();
  client.connect();
  const ws = await openSocket(client);
  const sub = client.subscribe('trade:TSLA');
  const heard = [];
  sub.on('error', (e) => heard.push(e.code));
  const [f] = ws.ops('subscribe');
  ws.frame({ type: 'error', id: f.id, code: 'forbidden', channels: ['trade:TSLA'] });
  await assert.rejects(sub, (e) => e.code === 'forbidden');
  assert.deepEqual(heard, ['forbidden']);
  client.close();
});

test('buildResubscribe groups frames by pace', () => {
  const patterns = new Map([
    ['trade:AAPL', { snapshot: true, throttleMs: 500 }],
    ['quote:*', { snapshot: true, throttleMs: 500 }],
    ['bar:AAPL', { snapshot: true }],
  ]);
  const { frames } = buildResubscribe(patterns, new Map([['trade:AAPL', '1-0']]));
  assert.deepEqual(frames, [
    { channels: ['trade:AAPL'], since: { 'trade:AAPL': '1-0' }, snapshot: false, throttle_ms: 500 },
    { channels: ['quote:*'], snapshot: true, throttle_ms: 500 },
    { channels: ['bar:AAPL'], snapshot: true },
  ]);
});

test('history fetches /v1/history with a Bearer token and reports errors', async () => {
  const calls = [];
  const answers = [
    { ok: true, status: 200, json: async () => ({ channel: 'bar:AAPL', events: [ev('bar:AAPL', '1-0')] }) },
    { ok: false, status: 429, json: async () => ({ code: 'rate_limited', message: 'slow down' }) },
    { ok: false, status: 502, json: async () => { throw new SyntaxError('not JSON'); } },
  ];
  const { client } = newClient({
    url: 'wss://md.example:8443/v1/stream',
    token: async () => 'fresh',
    fetch: async (url, init) => {
      calls.push({ url, init });
      return answers.shift();
    },
  });
  const page = await client.history('bar:aapl', { limit: 500, before: '9-0' });
  assert.deepEqual(page, { channel: 'bar:AAPL', events: [ev('bar:AAPL', '1-0')] });
  assert.equal(calls[0].url, 'https://md.example:8443/v1/history?channel=bar%3AAAPL&limit=500&before=9-0');
  assert.equal(calls[0].init.headers.Authorization, 'Bearer fresh');
  await assert.rejects(client.history('bar:AAPL'), (e) => e.code === 'rate_limited' && e.status === 429);
  await assert.rejects(client.history('bar:AAPL'), (e) => e.code === 'http_502' && e.status === 502);
  assert.equal(httpUrl('ws://h:1/v1/stream', '/x'), 'http://h:1/x');
});

test('a refused origin stops the client with origin_refused instead of retrying forever', async () => {
  const modes = [];
  const { client, errors } = newClient({
    transport: 'websocket',
    fetch: async (url, init) => {
      modes.push(init.mode);
      if (init.mode === 'cors') throw new TypeError('Failed to fetch'); // no CORS header for this origin
      return { type: 'opaque', status: 0 };
    },
  });
  const states = [];
  client.on('status', (s) => states.push(s.state));
  client.connect();
  for (let i = 0; i < 3; i++) {
    await until(() => FakeSocket.all.length > i, 'socket ' + i);
    FakeSocket.all[i].drop(1006); // the 403 at the upgrade, as a browser shows it
  }
  await until(() => client.state === 'closed', 'closed');
  assert.deepEqual(modes, ['cors', 'no-cors']);
  assert.equal(errors.at(-1).code, 'origin_refused');
  const n = FakeSocket.all.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(FakeSocket.all.length, n, 'no retry after origin_refused');
});

test('an unreachable server is retried, never declared refused', async () => {
  const { client, errors } = newClient({
    fetch: async () => {
      throw new TypeError('Failed to fetch');
    },
  });
  client.connect();
  for (let i = 0; i < 4; i++) {
    await until(() => FakeSocket.all.length > i, 'socket ' + i);
    FakeSocket.all[i].drop(1006);
  }
  await until(() => FakeSocket.all.length > 4, 'a fifth attempt');
  assert.equal(errors.length, 0);
  client.close();
});

test('auto transport falls back to SSE when WebSocket fails and HTTP works', async () => {
  const { client, errors } = newClient({ fetch: async () => ({ ok: true, status: 200 }) });
  const sub = client.subscribe(['trade:AAPL', 'quote:*'], { throttleMs: 250 });
  const got = [];
  sub.on('event', (e) => got.push(e.id));
  client.connect();
  for (let i = 0; i < 3; i++) {
    await until(() => FakeSocket.all.length > i, 'socket ' + i);
    FakeSocket.all[i].drop(1006); // a proxy that breaks WebSocket
  }
  await until(() => FakeEventSource.all.length === 1, 'event source');
  assert.equal(client.using, 'sse');
  assert.equal(errors[0].code, 'websocket_failed');
  const es = FakeEventSource.all[0];
  const u = new URL(es.url);
  assert.equal(u.origin + u.pathname, 'http://example.test/v1/sse');
  assert.equal(u.searchParams.get('channels'), 'trade:AAPL,quote:*');
  assert.equal(u.searchParams.get('access_token'), 'tok');
  assert.equal(u.searchParams.get('throttle_ms'), '250');
  await sub;
  es.open();
  assert.equal(client.state, 'open');
  es.message('events', { type: 'events', events: [ev('trade:AAPL', '1-0'), ev('trade:AAPL', '1-0'), ev('quote:X', '2-0')] });
  assert.deepEqual(got, ['1-0', '2-0']);

  // A new subscription opens a new stream with every channel.
  await client.subscribe('bar:AAPL');
  await until(() => FakeEventSource.all.length === 2, 'second event source');
  assert.ok(es.closed);
  assert.equal(new URL(FakeEventSource.all[1].url).searchParams.get('channels'), 'trade:AAPL,quote:*,bar:AAPL');
  client.close();
  assert.ok(FakeEventSource.all[1].closed);
});

test('forced SSE never opens a WebSocket', async () => {
  const { client } = newClient({ transport: 'sse' });
  client.subscribe('trade:AAPL');
  client.connect();
  await until(() => FakeEventSource.all.length === 1, 'event source');
  assert.equal(FakeSocket.all.length, 0);
  client.close();
});

test('a list of URLs: each reconnect tries the next replica', async () => {
  const { client } = newClient({ url: ['ws://a.test/v1/stream', 'ws://b.test/v1/stream'] });
  client.subscribe('trade:AAPL');
  client.connect();
  const ws = await openSocket(client);
  assert.ok(ws.url.startsWith('ws://a.test/'));
  const [f] = ws.ops('subscribe');
  ws.frame({ type: 'subscribed', id: f.id, channels: f.channels });
  ws.frame({ type: 'events', events: [ev('trade:AAPL', '3-0')] });
  ws.drop(1006); // the replica was killed
  const ws2 = await openSocket(client, 1);
  assert.ok(ws2.url.startsWith('ws://b.test/'));
  assert.deepEqual(ws2.ops('subscribe')[0].since, { 'trade:AAPL': '3-0' });
  client.close();
});
