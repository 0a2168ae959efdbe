// Tests of tickwire.js without a browser or a server: pure helpers, and the
// client driven through a fake WebSocket. Run: node --test test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TickwireClient,
  backoffDelay,
  buildResubscribe,
  classifyClose,
  compareIds,
  covers,
  isNewer,
  normalizeChannel,
  parseId,
} from '../tickwire.js';

test('compareIds orders MS-SEQ numerically', () => {
  const cases = [
    ['1-0', '1-0', 0],
    ['1-1', '1-0', 1],
    ['1-9', '1-10', -1], // lexicographic order would say 1
    ['9-0', '10-0', -1],
    ['1764288000123-0', '1764288000122-99', 1],
    ['5', '5-0', 0],
    ['007-1', '7-1', 0],
    ['1-18446744073709551615', '1-18446744073709551614', 1], // beyond 2^53
    ['bogus', '0-0', -1],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(Math.sign(compareIds(a, b)), want, `${a} vs ${b}`);
    assert.equal(Math.sign(compareIds(b, a)), 0 - want, `${b} vs ${a}`);
  }
});

test('parseId and isNewer', () => {
  assert.deepEqual(parseId('12-3'), ['12', '3']);
  assert.equal(parseId('12-'), null);
  assert.equal(parseId('-1'), null);
  assert.equal(parseId(12), null);
  assert.equal(isNewer('1-0', undefined), true);
  assert.equal(isNewer('1-0', '1-0'), false);
  assert.equal(isNewer('1-1', '1-0'), true);
  assert.equal(isNewer('x', undefined), false);
});

test('normalizeChannel and covers', () => {
  assert.equal(normalizeChannel('Trade:aapl'), 'trade:AAPL');
  assert.equal(normalizeChannel('quote:*'), 'quote:*');
  assert.equal(normalizeChannel('QUOTE:eur/usd'), 'quote:EUR/USD');
  assert.ok(covers('trade:*', 'trade:AAPL'));
  assert.ok(covers('trade:AAPL', 'trade:AAPL'));
  assert.ok(!covers('trade:*', 'quote:AAPL'));
  assert.ok(!covers('trade:AAPL', 'trade:MSFT'));
});

test('backoffDelay stays within [0, min(cap, base*2^n))', () => {
  const opts = { baseMs: 500, capMs: 30000 };
  for (let n = 0; n < 40; n++) {
    const ceiling = Math.min(30000, 500 * 2 ** n);
    assert.equal(backoffDelay(n, { ...opts, random: () => 0 }), 0);
    const hi = backoffDelay(n, { ...opts, random: () => 0.999999 });
    assert.ok(hi < ceiling && hi >= ceiling - 1, `attempt ${n}: ${hi} vs ${ceiling}`);
    const r = backoffDelay(n, opts);
    assert.ok(r >= 0 && r < ceiling);
  }
});

test('classifyClose', () => {
  for (const code of [1001, 1006, 1011, 1012, 4008, 1005]) {
    assert.deepEqual([classifyClose(code).reconnect, classifyClose(code).penalty], [true, false], String(code));
  }
  for (const code of [1009, 4000, 4009, 4029]) {
    assert.deepEqual([classifyClose(code).reconnect, classifyClose(code).penalty], [true, true], String(code));
  }
  for (const code of [1000, 4001]) assert.equal(classifyClose(code).reconnect, false, String(code));
});

test('buildResubscribe: concrete channels resume with since, first', () => {
  const patterns = new Map([
    ['quote:*', { snapshot: true }],
    ['trade:AAPL', { snapshot: true }],
    ['trade:MSFT', { snapshot: true }],
    ['bar:IBM', { snapshot: false }],
  ]);
  const lastIds = new Map([
    ['trade:AAPL', '10-1'],
    ['quote:AAPL', '11-0'],
  ]);
  const { frames, extra } = buildResubscribe(patterns, lastIds, { wildcards: 'snapshot' });
  assert.deepEqual(frames, [
    { channels: ['trade:AAPL'], since: { 'trade:AAPL': '10-1' }, snapshot: false },
    { channels: ['quote:*', 'trade:MSFT'], snapshot: true },
    { channels: ['bar:IBM'], snapshot: false },
  ]);
  assert.deepEqual(extra, []);
});

test('buildResubscribe: since only names channels of its frame', () => {
  const patterns = new Map([['trade:*', { snapshot: true }], ['quote:*', { snapshot: true }]]);
  const lastIds = new Map([['trade:AAPL', '10-1'], ['trade:MSFT', '10-2'], ['quote:AAPL', '9-0']]);
  for (const wildcards of ['snapshot', 'expand']) {
    const { frames } = buildResubscribe(patterns, lastIds, { wildcards, maxPerFrame: 2 });
    for (const f of frames) {
      for (const ch of Object.keys(f.since || {})) {
        assert.ok(f.channels.includes(ch), `${wildcards}: ${ch} not in ${f.channels}`);
        assert.ok(!ch.endsWith(':*'));
      }
      assert.ok(f.channels.length <= 2);
    }
    const all = frames.flatMap((f) => f.channels);
    assert.ok(all.includes('trade:*') && all.includes('quote:*'));
  }
});

test('buildResubscribe: expand resumes channels seen through a wildcard', () => {
  const patterns = new Map([['trade:*', { snapshot: true }], ['quote:*', { snapshot: true }]]);
  const lastIds = new Map([['trade:AAPL', '10-1'], ['trade:MSFT', '10-2']]);
  const { frames, extra } = buildResubscribe(patterns, lastIds, { wildcards: 'expand' });
  assert.deepEqual(frames, [
    {
      channels: ['trade:*', 'trade:AAPL', 'trade:MSFT'],
      since: { 'trade:AAPL': '10-1', 'trade:MSFT': '10-2' },
      snapshot: false,
    },
    { channels: ['quote:*'], snapshot: true },
  ]);
  assert.deepEqual(extra, ['trade:AAPL', 'trade:MSFT']);

  const capped = buildResubscribe(patterns, lastIds, { wildcards: 'expand', maxChannels: 3 });
  assert.deepEqual(capped.frames, [{ channels: ['trade:*', 'quote:*'], snapshot: true }]);
});

// --- the client against a fake WebSocket ----------------------------------

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
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // server side
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }
  frame(obj) {
    this.onmessage && this.onmessage({ data: JSON.stringify(obj) });
  }
  drop(code, reason = '') {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason });
  }
  ops(op) {
    return this.sent.filter((f) => f.op === op);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const until = async (cond, what) => {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail('timed out waiting for ' + what);
};

function newClient(extra = {}) {
  FakeSocket.all = [];
  const client = new TickwireClient({
    url: 'ws://example.test/v1/stream',
    token: 'tok en',
    WebSocket: FakeSocket,
    baseMs: 1,
    capMs: 4,
    penaltyMs: 40,
    ...extra,
  });
  const seen = { status: [], event: [], snapshot: [], gap: [], error: [], unauthorized: [] };
  for (const type of Object.keys(seen)) client.on(type, (d) => seen[type].push(d));
  return { client, seen };
}

const ev = (ch, id, data = {}) => ({ ch, id, ts: 1, data });

test('client: subscribes, drops duplicates, resumes with since after 1001', async () => {
  const { client, seen } = newClient({ wildcards: 'snapshot' });
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'first socket');
  const ws = FakeSocket.all[0];
  assert.equal(ws.url, 'ws://example.test/v1/stream?access_token=tok%20en');

  const sub = client.subscribe(['Trade:aapl', 'quote:*']);
  ws.open();
  ws.frame({ type: 'welcome', user: 'alice', replica: 'pub-1', heartbeat_ms: 20000, max_channels: 1000 });
  const [req] = ws.ops('subscribe');
  assert.deepEqual(req.channels, ['trade:AAPL', 'quote:*']);
  ws.frame({ type: 'subscribed', id: req.id, channels: req.channels, recovered: {} });
  await sub;
  assert.equal(client.state, 'open');
  assert.equal(seen.status.at(-1).replica, 'pub-1');

  ws.frame({ type: 'snapshot', events: [ev('quote:AAPL', '5-0'), ev('trade:AAPL', '6-0')] });
  ws.frame({ type: 'events', events: [ev('trade:AAPL', '6-0'), ev('trade:AAPL', '7-0'), ev('trade:AAPL', '6-5')] });
  ws.frame({ type: 'events', events: [ev('trade:MSFT', '8-0')] }); // not subscribed
  assert.equal(seen.snapshot.length, 1);
  assert.deepEqual(seen.event.map((e) => e.id), ['7-0']);
  assert.equal(client.stats.dropped, 2);
  assert.deepEqual(client.lastIds, { 'quote:AAPL': '5-0', 'trade:AAPL': '7-0' });

  ws.drop(1001, 'draining');
  assert.equal(client.state, 'reconnecting');
  assert.equal(seen.status.at(-1).code, 1001);
  await until(() => FakeSocket.all.length === 2, 'reconnect');
  const ws2 = FakeSocket.all[1];
  ws2.open();
  const frames = ws2.ops('subscribe');
  assert.deepEqual(frames.map(({ id, op, ...f }) => f), [
    { channels: ['trade:AAPL'], since: { 'trade:AAPL': '7-0' }, snapshot: false },
    { channels: ['quote:*'], snapshot: true },
  ]);
  ws2.frame({ type: 'welcome', user: 'alice', replica: 'pub-2', heartbeat_ms: 20000 });
  ws2.frame({ type: 'subscribed', id: frames[0].id, channels: ['trade:AAPL'], recovered: { 'trade:AAPL': false } });
  ws2.frame({ type: 'gap', channels: ['trade:AAPL'], reason: 'trimmed' });
  ws2.frame({ type: 'events', events: [ev('trade:AAPL', '7-0'), ev('trade:AAPL', '9-0')] });
  assert.deepEqual(seen.event.map((e) => e.id), ['7-0', '9-0']);
  assert.deepEqual(seen.gap, [{ channels: ['trade:AAPL'], reason: 'trimmed' }]);
  assert.equal(seen.status.at(-1).replica, 'pub-2');
  client.close();
});

test('client: 4001 stops and reports unauthorized', async () => {
  const { client, seen } = newClient();
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  const ws = FakeSocket.all[0];
  ws.open();
  ws.frame({ type: 'error', code: 'token_expired', message: 'token expired' });
  ws.drop(4001);
  assert.equal(client.state, 'closed');
  assert.deepEqual(seen.unauthorized.map((u) => u.code), ['token_expired']);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(FakeSocket.all.length, 1, 'no reconnect after 4001');
});

test('client: 4029 waits at least half the penalty; 1000 stops', async () => {
  const { client, seen } = newClient();
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  FakeSocket.all[0].open();
  FakeSocket.all[0].drop(4029);
  const st = seen.status.at(-1);
  assert.equal(st.state, 'reconnecting');
  assert.ok(st.delayMs >= 20 && st.delayMs <= 40, `delay ${st.delayMs}`);
  await until(() => FakeSocket.all.length === 2, 'reconnect after penalty');
  FakeSocket.all[1].open();
  FakeSocket.all[1].drop(1000);
  assert.equal(client.state, 'closed');
  await tick();
  assert.equal(FakeSocket.all.length, 2);
});

test('client: a refused URL token is read from the error frame, without asking over HTTP', async () => {
  const calls = [];
  const saved = globalThis.fetch;
  globalThis.fetch = async (url) => {
    calls.push(url);
    return { status: 401 };
  };
  try {
    const { client, seen } = newClient();
    const sub = client.subscribe('trade:AAPL');
    client.connect();
    await until(() => FakeSocket.all.length === 1, 'socket');
    const ws = FakeSocket.all[0];
    assert.equal(ws.url, 'ws://example.test/v1/stream?access_token=tok%20en');
    // Protocol v1.1: the server upgrades, then refuses in a frame.
    ws.open();
    ws.frame({ type: 'error', code: 'token_expired', message: 'invalid token: token expired at 2026-11-30T19:00:00Z' });
    ws.drop(4001, 'token expired');
    assert.equal(client.state, 'closed');
    assert.deepEqual(seen.unauthorized, [{ code: 'token_expired', reason: 'token expired' }]);
    assert.equal(seen.status.at(-1).reason, 'token expired');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(FakeSocket.all.length, 1, 'no reconnect after 4001');
    assert.deepEqual(calls, [], 'no HTTP probe');
    client.close();
    await sub.catch(() => {});
  } finally {
    globalThis.fetch = saved;
  }
});

test('client: a bare 1006 before open is retried with backoff, never probed', async () => {
  const calls = [];
  const saved = globalThis.fetch;
  globalThis.fetch = async (url) => {
    calls.push(url);
    return { status: 401 };
  };
  try {
    const { client, seen } = newClient();
    client.connect();
    await until(() => FakeSocket.all.length === 1, 'socket');
    FakeSocket.all[0].drop(1006);
    assert.equal(seen.status.at(-1).state, 'reconnecting');
    await until(() => FakeSocket.all.length === 2, 'reconnect');
    assert.equal(seen.unauthorized.length, 0);
    assert.deepEqual(calls, [], 'no HTTP probe');
    client.close();
  } finally {
    globalThis.fetch = saved;
  }
});

test('client: subscribes survive a refused token until the next connect', async () => {
  const { client, seen } = newClient();
  const sub = client.subscribe('trade:*');
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  FakeSocket.all[0].open();
  FakeSocket.all[0].frame({ type: 'error', code: 'unauthorized', message: 'bad signature' });
  FakeSocket.all[0].drop(4001);
  assert.equal(seen.unauthorized.length, 1);
  client.setToken('new');
  client.connect();
  await until(() => FakeSocket.all.length === 2, 'second socket');
  const ws = FakeSocket.all[1];
  assert.equal(ws.url, 'ws://example.test/v1/stream?access_token=new');
  ws.open();
  const [req] = ws.ops('subscribe');
  assert.deepEqual(req.channels, ['trade:*']);
  ws.frame({ type: 'subscribed', id: req.id, channels: req.channels });
  await sub;
  client.close();
});

test('client: a subscribe unanswered when the connection drops is sent again', async () => {
  const { client } = newClient();
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  FakeSocket.all[0].open();
  const sub = client.subscribe('trade:*');
  assert.equal(FakeSocket.all[0].ops('subscribe').length, 1);
  FakeSocket.all[0].drop(1006);
  await until(() => FakeSocket.all.length === 2, 'reconnect');
  const ws2 = FakeSocket.all[1];
  ws2.open();
  const [req] = ws2.ops('subscribe');
  assert.deepEqual(req.channels, ['trade:*']);
  ws2.frame({ type: 'subscribed', id: req.id, channels: ['trade:*'] });
  await sub;
  assert.deepEqual(client.subscriptions, ['trade:*']);
  client.close();
});

test('client: a refused subscribe is not kept', async () => {
  const { client, seen } = newClient();
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  const ws = FakeSocket.all[0];
  ws.open();
  const sub = client.subscribe(['trade:TSLA']);
  const [req] = ws.ops('subscribe');
  ws.frame({ type: 'error', id: req.id, code: 'forbidden', message: 'no', channels: ['trade:TSLA'] });
  await assert.rejects(sub, (err) => err.code === 'forbidden' && err.channels[0] === 'trade:TSLA');
  assert.deepEqual(client.subscriptions, []);
  assert.equal(seen.error.length, 1);
  client.close();
});

test('client: unsubscribe forgets ids and the extra channels of expand', async () => {
  const { client } = newClient();
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  const ws = FakeSocket.all[0];
  ws.open();
  const sub = client.subscribe(['trade:*']);
  ws.frame({ type: 'subscribed', id: ws.ops('subscribe')[0].id, channels: ['trade:*'] });
  await sub;
  ws.frame({ type: 'events', events: [ev('trade:AAPL', '1-0')] });
  ws.drop(4008);
  await until(() => FakeSocket.all.length === 2, 'reconnect');
  const ws2 = FakeSocket.all[1];
  ws2.open();
  const [req] = ws2.ops('subscribe');
  assert.deepEqual(req.channels, ['trade:*', 'trade:AAPL']);
  assert.deepEqual(req.since, { 'trade:AAPL': '1-0' });
  ws2.frame({ type: 'subscribed', id: req.id, channels: req.channels });
  const un = client.unsubscribe('trade:*');
  const [u] = ws2.ops('unsubscribe');
  assert.deepEqual(u.channels, ['trade:*', 'trade:AAPL']);
  ws2.frame({ type: 'unsubscribed', id: u.id, channels: u.channels });
  await un;
  assert.deepEqual(client.lastIds, {});
  client.close();
});

test('client: auth in the first frame', async () => {
  const { client } = newClient({ auth: 'frame' });
  const sub = client.subscribe('trade:*');
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  const ws = FakeSocket.all[0];
  assert.equal(ws.url, 'ws://example.test/v1/stream');
  ws.open();
  assert.deepEqual(ws.sent, [{ op: 'auth', token: 'tok en' }]);
  ws.frame({ type: 'welcome', user: 'a', replica: 'r', heartbeat_ms: 20000 });
  assert.equal(ws.ops('subscribe').length, 1);
  client.close();
  await assert.rejects(sub, (err) => err.code === 'closed');
});

test('client: a renewed token that drops channels unsubscribes them', async () => {
  const { client, seen } = newClient();
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  const ws = FakeSocket.all[0];
  ws.open();
  const sub = client.subscribe(['trade:*', 'quote:AAPL']);
  ws.frame({ type: 'subscribed', id: ws.ops('subscribe')[0].id, channels: ['trade:*', 'quote:AAPL'] });
  await sub;
  ws.frame({ type: 'events', events: [ev('quote:AAPL', '1-0'), ev('trade:IBM', '1-0')] });
  const renewed = client.reauth('fresh');
  assert.deepEqual(ws.sent.at(-1), { op: 'auth', id: 'auth', token: 'fresh' });
  ws.frame({ type: 'welcome', id: 'auth', user: 'a', replica: 'r', heartbeat_ms: 20000 });
  ws.frame({ type: 'unsubscribed', channels: ['quote:AAPL'] });
  await renewed;
  assert.deepEqual(client.subscriptions, ['trade:*']);
  assert.deepEqual(client.lastIds, { 'trade:IBM': '1-0' });
  assert.equal(seen.error.at(-1).channels[0], 'quote:AAPL');
  client.close();
});

test('client: unsubscribing a queued subscribe cancels it', async () => {
  const { client } = newClient();
  const both = client.subscribe(['trade:*', 'quote:*']);
  const one = client.subscribe(['bar:*']);
  await client.unsubscribe(['bar:*', 'quote:*']);
  await assert.rejects(one, (err) => err.code === 'canceled');
  client.connect();
  await until(() => FakeSocket.all.length === 1, 'socket');
  FakeSocket.all[0].open();
  const [req] = FakeSocket.all[0].ops('subscribe');
  assert.deepEqual(req.channels, ['trade:*']);
  FakeSocket.all[0].frame({ type: 'subscribed', id: req.id, channels: req.channels });
  await both;
  assert.deepEqual(client.subscriptions, ['trade:*']);
  client.close();
});
