// app.js: the live demo page. Events only update plain objects; the DOM is
// touched once per animation frame, for the rows that changed, so thousands
// of events a second cost a few hundred DOM writes a second at most.
//
// URL parameters (query or fragment): token (the JWT), ws (stream URL,
// default this host), channels (comma list, default trade:*,quote:*,bar:*,
// signal:*), resume=snapshot (after a reconnect, refresh wildcards with a
// snapshot instead of resuming every channel seen; see tickwire.js),
// auth=frame (send the token in a first frame).
import { TickwireClient } from './tickwire.js';

const DEFAULT_CHANNELS = ['trade:*', 'quote:*', 'bar:*', 'signal:*'];
const TAPE_ROWS = 40;
const SIGNAL_ROWS = 30;
const LOG_ROWS = 80;
const LATENCY_WINDOW_S = 5;
const LATENCY_SAMPLES_PER_S = 1000;
const GAP_NOTICE_MS = 30000;

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
const param = (name) => fragment.get(name) || query.get(name) || '';

// --- formatting -------------------------------------------------------------

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const pad2 = (n) => (n < 10 ? '0' : '') + n;
const pad3 = (n) => (n < 10 ? '00' : n < 100 ? '0' : '') + n;

function fmtTime(ms) {
  if (typeof ms !== 'number' || !isFinite(ms)) return '–';
  const d = new Date(ms);
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) + '.' + pad3(d.getMilliseconds());
}

function fmtNum(x, dp) {
  return typeof x === 'number' && isFinite(x) ? x.toFixed(dp) : '–';
}

function fmtInt(x) {
  return typeof x === 'number' && isFinite(x) ? intFmt.format(x) : '–';
}

function fmtMs(ms) {
  if (ms === null) return '–';
  if (Math.abs(ms) < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(1) + ' s';
}

// decimals returns how many decimals x shows, between 2 and 6.
function decimals(x) {
  if (typeof x !== 'number' || !isFinite(x)) return 2;
  const s = String(x);
  const dot = s.indexOf('.');
  if (dot < 0 || s.includes('e')) return 2;
  return Math.max(2, Math.min(6, s.length - dot - 1));
}

// --- state ------------------------------------------------------------------

const symbols = new Map(); // symbol → row state
const order = []; // symbols in table order
const dirty = new Set();
let tapeNew = []; // trades not drawn yet, oldest first
let signalsNew = [];
let frameRequested = false;
let eventsThisSecond = 0;
const latency = []; // per second: {seen, samples}, newest last

function symbolState(sym) {
  let s = symbols.get(sym);
  if (s) return s;
  s = { sym, dp: 2, count: 0, last: undefined, dir: '', flash: '', flashCls: '', flip: false, cells: null, text: [] };
  symbols.set(sym, s);
  return s;
}

// apply folds one event into the state; live events flash and count.
function apply(ev, live) {
  const colon = ev.ch.indexOf(':');
  const kind = ev.ch.slice(0, colon);
  const sym = ev.ch.slice(colon + 1);
  const d = ev.data || {};
  const s = symbolState(sym);
  s.count++;
  if (typeof ev.ts === 'number' && !(s.updated > ev.ts)) s.updated = ev.ts;
  switch (kind) {
    case 'trade': {
      const dir = s.last === undefined || d.price === s.last ? s.dir : d.price > s.last ? 'up' : 'down';
      if (live && dir && d.price !== s.last && s.last !== undefined) s.flash = dir;
      s.dir = dir;
      s.last = d.price;
      s.size = d.size;
      s.dp = Math.max(s.dp, decimals(d.price));
      tapeNew.push({ sym, price: d.price, size: d.size, ts: ev.ts, dir, dp: s.dp, live });
      if (tapeNew.length > TAPE_ROWS) tapeNew = tapeNew.slice(-TAPE_ROWS);
      break;
    }
    case 'quote':
      s.bid = d.bid;
      s.ask = d.ask;
      s.bidSize = d.bid_size;
      s.askSize = d.ask_size;
      s.dp = Math.max(s.dp, decimals(d.bid), decimals(d.ask));
      break;
    case 'bar':
      s.bar = d;
      break;
    case 'signal':
      signalsNew.push({ sym, ts: ev.ts, data: d, dp: s.dp });
      if (signalsNew.length > SIGNAL_ROWS) signalsNew = signalsNew.slice(-SIGNAL_ROWS);
      break;
  }
  dirty.add(s);
  schedule();
}

function onEvent(ev) {
  eventsThisSecond++;
  if (typeof ev.ts === 'number') sampleLatency(Date.now() - ev.ts);
  apply(ev, true);
}

function onSnapshot({ events }) {
  const sorted = [...events].sort((a, b) => (a.ts || 0) - (b.ts || 0));
  for (const ev of sorted) apply(ev, false);
}

// sampleLatency keeps a uniform sample (reservoir) of at most
// LATENCY_SAMPLES_PER_S latencies for the current second.
function sampleLatency(ms) {
  const b = latency[latency.length - 1];
  b.seen++;
  if (b.samples.length < LATENCY_SAMPLES_PER_S) b.samples.push(ms);
  else {
    const i = Math.floor(Math.random() * b.seen);
    if (i < LATENCY_SAMPLES_PER_S) b.samples[i] = ms;
  }
}

function medianLatency() {
  let n = 0;
  for (const b of latency) n += b.samples.length;
  if (n === 0) return null;
  const all = new Float64Array(n);
  let i = 0;
  for (const b of latency) for (const x of b.samples) all[i++] = x;
  all.sort();
  return n % 2 ? all[(n - 1) / 2] : (all[n / 2 - 1] + all[n / 2]) / 2;
}

function everySecond() {
  $('eps').textContent = intFmt.format(eventsThisSecond);
  eventsThisSecond = 0;
  $('latency').textContent = fmtMs(medianLatency());
  latency.push({ seen: 0, samples: [] });
  while (latency.length > LATENCY_WINDOW_S) latency.shift();
}

// --- drawing ----------------------------------------------------------------

function schedule() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(draw);
}

function draw() {
  frameRequested = false;
  for (const s of dirty) drawRow(s);
  dirty.clear();
  if (tapeNew.length) drawTape();
  if (signalsNew.length) drawSignals();
}

const COLS = ['sym', 'last', 'size', 'bid', 'ask', 'spread', 'sizes', 'bar', 'vol', 'updated', 'count'];

function createRow(s) {
  const tr = document.createElement('tr');
  s.cells = COLS.map((c) => {
    const td = document.createElement('td');
    td.className = c === 'sym' ? 'sym' : 'num ' + c;
    tr.appendChild(td);
    return td;
  });
  // Keep the table sorted by symbol.
  let i = order.length;
  while (i > 0 && order[i - 1].sym > s.sym) i--;
  const before = order[i];
  order.splice(i, 0, s);
  $('rows').insertBefore(tr, before ? before.cells[0].parentNode : null);
  $('empty').hidden = true;
  $('nsym').textContent = String(order.length);
}

function set(s, i, text) {
  if (s.text[i] !== text) {
    s.text[i] = text;
    s.cells[i].textContent = text;
  }
}

function drawRow(s) {
  if (!s.cells) createRow(s);
  const dp = s.dp;
  set(s, 0, s.sym);
  set(s, 1, fmtNum(s.last, dp));
  set(s, 2, fmtInt(s.size));
  set(s, 3, fmtNum(s.bid, dp));
  set(s, 4, fmtNum(s.ask, dp));
  let spread = '–';
  if (typeof s.bid === 'number' && typeof s.ask === 'number') {
    const mid = (s.bid + s.ask) / 2;
    spread = (s.ask - s.bid).toFixed(dp) + (mid > 0 ? ' · ' + (((s.ask - s.bid) / mid) * 1e4).toFixed(1) + ' bp' : '');
  }
  set(s, 5, spread);
  set(s, 6, s.bidSize === undefined ? '–' : fmtInt(s.bidSize) + ' × ' + fmtInt(s.askSize));
  const b = s.bar;
  set(s, 7, b ? [b.open, b.high, b.low, b.close].map((x) => fmtNum(x, dp)).join(' / ') : '–');
  set(s, 8, b && typeof b.volume === 'number' ? compactFmt.format(b.volume) : '–');
  set(s, 9, fmtTime(s.updated));
  set(s, 10, intFmt.format(s.count));
  if (s.flash) {
    // Two identical animations under two names: switching the name restarts
    // the flash without forcing a layout. The class stays after it ends.
    s.flip = !s.flip;
    s.flashCls = 'flash-' + s.flash + (s.flip ? '-a' : '-b');
    s.flash = '';
  }
  const cls = 'num last ' + s.dir + (s.flashCls ? ' ' + s.flashCls : '');
  if (s.cells[1].className !== cls) s.cells[1].className = cls;
}

function li(cls, parts) {
  const el = document.createElement('li');
  if (cls) el.className = cls;
  for (const [c, text] of parts) {
    const span = document.createElement('span');
    span.className = c;
    span.textContent = text;
    el.appendChild(span);
  }
  return el;
}

function prepend(list, items, max) {
  const frag = document.createDocumentFragment();
  for (let i = items.length - 1; i >= 0; i--) frag.appendChild(items[i]);
  list.insertBefore(frag, list.firstChild);
  while (list.children.length > max) list.lastChild.remove();
}

function drawTape() {
  const items = tapeNew.map((t) =>
    li((t.dir || 'flat') + (t.live ? '' : ' old'), [
      ['t', fmtTime(t.ts)],
      ['s', t.sym],
      ['p', fmtNum(t.price, t.dp)],
      ['q', fmtInt(t.size)],
    ]),
  );
  tapeNew = [];
  prepend($('tape'), items, TAPE_ROWS);
}

const SIGNAL_LABELS = { new_high: '▲ new high', new_low: '▼ new low', surge: '⚡ surge' };

function drawSignals() {
  const list = $('signals');
  const placeholder = list.querySelector('.empty');
  if (placeholder) placeholder.remove();
  const items = signalsNew.map((g) => {
    const d = g.data;
    const extra = Object.entries(d)
      .filter(([k, v]) => k !== 'signal' && k !== 'price' && typeof v === 'number')
      .map(([k, v]) => k + ' ' + (Number.isInteger(v) ? fmtInt(v) : v.toFixed(2)))
      .join(', ');
    const kind = d.signal === 'new_high' ? 'up' : d.signal === 'new_low' ? 'down' : 'surge';
    return li(kind, [
      ['t', fmtTime(g.ts)],
      ['s', g.sym],
      ['k', SIGNAL_LABELS[d.signal] || String(d.signal || '?')],
      ['p', fmtNum(d.price, g.dp)],
      ['x', extra],
    ]);
  });
  signalsNew = [];
  prepend(list, items, SIGNAL_ROWS);
}

function log(text, cls = '') {
  prepend($('log'), [li(cls, [['t', fmtTime(Date.now())], ['m', text]])], LOG_ROWS);
}

// --- connection status --------------------------------------------------------

let countdown = 0;
let gapTimer = 0;

function badge(cls, text, retry = false) {
  $('status').className = 'badge badge-' + cls;
  $('status-text').textContent = text;
  $('retry').hidden = !retry;
}

function onStatus(st) {
  clearInterval(countdown);
  switch (st.state) {
    case 'connecting':
      badge('wait', st.attempt ? 'connecting… (attempt ' + (st.attempt + 1) + ')' : 'connecting…');
      break;
    case 'open':
      badge('ok', st.replica ? 'connected · replica ' + st.replica : 'connected');
      $('user').textContent = st.user || '–';
      log('connected' + (st.replica ? ' to replica ' + st.replica : '') + (st.user ? ' as ' + st.user : ''), 'ok');
      break;
    case 'reconnecting': {
      const tick = () => {
        const left = Math.max(0, st.retryAt - Date.now());
        badge('wait', 'reconnecting in ' + (left / 1000).toFixed(1) + ' s · ' + st.reason, true);
      };
      tick();
      countdown = setInterval(tick, 100);
      log('closed ' + st.code + ' (' + st.reason + '); retry ' + st.attempt + ' in ' + (st.delayMs / 1000).toFixed(1) + ' s', 'warn');
      break;
    }
    case 'closed':
      badge('bad', 'disconnected · ' + st.reason);
      log('disconnected: ' + st.reason + (st.code ? ' (' + st.code + ')' : ''), 'bad');
      break;
  }
}

function onGap({ channels, reason }) {
  const el = $('gap');
  el.textContent = 'Gap at ' + fmtTime(Date.now()) + ' on ' + channels.join(', ') + (reason ? ' (' + reason + ')' : '') +
    ': events published while disconnected were no longer retained; the view continues from what was.';
  el.hidden = false;
  clearTimeout(gapTimer);
  gapTimer = setTimeout(() => (el.hidden = true), GAP_NOTICE_MS);
  log('gap on ' + channels.join(', ') + (reason ? ' (' + reason + ')' : ''), 'warn');
}

function onError(e) {
  log('error ' + e.code + (e.message ? ': ' + e.message : '') + (e.channels && e.channels.length ? ' [' + e.channels.join(', ') + ']' : ''), 'bad');
}

// --- token ------------------------------------------------------------------

let client = null;

function showTokenBox(reason) {
  const r = $('token-reason');
  r.textContent = reason || '';
  r.hidden = !reason;
  $('token-box').hidden = false;
  $('token-input').focus();
}

// rememberToken puts the token in the fragment, where a reload finds it and
// no server log sees it, and takes it out of the query.
function rememberToken(token) {
  query.delete('token');
  fragment.set('token', token);
  const search = query.toString();
  history.replaceState(null, '', location.pathname + (search ? '?' + search : '') + '#' + fragment.toString());
}

function onTokenSubmit(e) {
  e.preventDefault();
  const token = $('token-input').value.trim();
  if (!token) return;
  rememberToken(token);
  $('token-box').hidden = true;
  $('token-input').value = '';
  if (client) {
    if (client.state !== 'closed') client.close('token changed');
    client.setToken(token);
    client.connect();
  } else {
    start(token);
  }
}

// --- start ------------------------------------------------------------------

function start(token) {
  const channels = (param('channels') || DEFAULT_CHANNELS.join(','))
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  client = new TickwireClient({
    url: param('ws') || undefined,
    token,
    wildcards: param('resume') === 'snapshot' ? 'snapshot' : 'expand',
    auth: param('auth') === 'frame' ? 'frame' : 'query',
  });
  client.on('status', onStatus);
  client.on('event', onEvent);
  client.on('snapshot', onSnapshot);
  client.on('gap', onGap);
  client.on('error', onError);
  client.on('unauthorized', ({ code, reason }) => {
    log('token refused: ' + code, 'bad');
    showTokenBox(code === 'token_expired'
      ? 'The token expired. Paste a fresh one.'
      : 'The server refused the token' + (reason && reason !== code ? ' (' + reason + ')' : '') + '. Paste another one.');
  });
  $('subs').textContent = channels.join('  ');
  // One subscribe per channel: subscribe is all-or-nothing, and a token
  // that allows only some of them should still show those.
  for (const ch of channels) {
    client.subscribe([ch]).then(
      () => log('subscribed ' + ch),
      (err) => log('not subscribed ' + ch + ': ' + err.code + (err.message && err.message !== err.code ? ' (' + err.message + ')' : ''), 'bad'),
    );
  }
  client.connect();
  globalThis.tickwire = client; // for the console and for browser tests
}

function main() {
  latency.push({ seen: 0, samples: [] });
  setInterval(everySecond, 1000);
  $('token-form').addEventListener('submit', onTokenSubmit);
  $('change-token').addEventListener('click', () => showTokenBox(''));
  $('retry').addEventListener('click', () => client && client.reconnectNow());
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && client && client.state !== 'closed') $('token-box').hidden = true;
  });
  const token = param('token') || param('access_token');
  if (token) start(token);
  else showTokenBox('');
}

main();
