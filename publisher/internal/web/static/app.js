// app.js: the live demo page. Events only update plain objects; the DOM is
// touched once per animation frame, for the rows that changed, so thousands
// of events a second cost a few hundred DOM writes a second at most.
//
// URL parameters (query or fragment): token (the JWT), ws (stream URL,
// default this host), channels (comma list, default trade:*,quote:*,bar:*,
// signal:*), resume=snapshot (after a reconnect, refresh wildcards with a
// snapshot instead of resuming every channel seen; see tickwire.js),
// auth=frame (send the token in a first frame), symbol (the chart's),
// transport=sse|websocket (default auto), eventlog=1 (keep every event id
// per channel in globalThis.tickwireLog, for the browser test). ws may be a
// comma list of stream URLs: each reconnect tries the next.
import { TickwireClient } from './tickwire.js';
import { CandleChart } from './chart.js';

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

// fmtTime shows a time of today with milliseconds, and one of another day
// (replayed data) with its date, so old timestamps do not pass for today's.
function fmtTime(ms) {
  if (typeof ms !== 'number' || !isFinite(ms)) return '–';
  const d = new Date(ms);
  const hms = pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  if (d.toDateString() !== new Date().toDateString()) {
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + hms;
  }
  return hms + '.' + pad3(d.getMilliseconds());
}

// fmtClock is the time of day only, for the tape, the signals and the
// table, where a date would crowd out the numbers; the header's data time
// and each cell's tooltip carry the date.
function fmtClock(ms) {
  if (typeof ms !== 'number' || !isFinite(ms)) return '–';
  const d = new Date(ms);
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) + '.' + pad3(d.getMilliseconds());
}

// LIVE_LATENCY_MS bounds what is shown as latency: events whose ts is
// further from now are replayed or from a clock that is off, and their
// "latency" says nothing about the pipeline.
const LIVE_LATENCY_MS = 60000;

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
      noteDayOpen(s, d);
      if (sym === chartSym) chart.upsert(d);
      break;
    case 'signal':
      if (sym === chartSym) chart.addSignal({ ts: ev.ts, signal: d.signal, price: d.price });
      signalsNew.push({ sym, ts: ev.ts, data: d, dp: s.dp });
      if (signalsNew.length > SIGNAL_ROWS) signalsNew = signalsNew.slice(-SIGNAL_ROWS);
      break;
  }
  dirty.add(s);
  schedule();
}

let newestTs = 0;
const eventLog = param('eventlog') === '1' ? new Map() : null; // ch → ids
if (eventLog) globalThis.tickwireLog = eventLog;

function logEvent(ev) {
  if (!eventLog) return;
  if (!eventLog.has(ev.ch)) eventLog.set(ev.ch, []);
  eventLog.get(ev.ch).push(ev.id);
}

function onEvent(ev) {
  eventsThisSecond++;
  logEvent(ev);
  if (typeof ev.ts === 'number') {
    sampleLatency(Date.now() - ev.ts);
    if (ev.ts > newestTs) newestTs = ev.ts;
  }
  apply(ev, true);
}

function onSnapshot({ events }) {
  // Snapshot events are not logged: the log is of the events that follow
  // each other (live and resumed), which a test compares with Redis.
  for (const ev of events) {
    if (typeof ev.ts === 'number' && ev.ts > newestTs) newestTs = ev.ts;
  }
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
  const med = medianLatency();
  const live = med !== null && med > -5000 && med < LIVE_LATENCY_MS;
  $('latency').textContent = live ? fmtMs(med) : med === null ? '–' : 'replay';
  $('latency').title = live ? 'now − event ts, median over the last 5 s' : 'events are older than a minute (replayed data): no latency to show';
  $('datatime').textContent = newestTs ? fmtTime(newestTs) : '–';
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

const COLS = ['sym', 'last', 'chg', 'size', 'bid', 'ask', 'spread', 'sizes', 'vol', 'updated', 'count'];

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
  tr.addEventListener('click', () => showSymbol(s.sym));
  addSymbolOption(s.sym);
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
  const chg = dayChange(s);
  set(s, 2, chg === null ? '–' : (chg > 0 ? '+' : '') + chg.toFixed(2) + '%');
  const chgCls = 'num chg' + (chg > 0 ? ' up' : chg < 0 ? ' down' : '');
  if (s.cells[2].className !== chgCls) s.cells[2].className = chgCls;
  set(s, 3, fmtInt(s.size));
  set(s, 4, fmtNum(s.bid, dp));
  set(s, 5, fmtNum(s.ask, dp));
  let spread = '–';
  if (typeof s.bid === 'number' && typeof s.ask === 'number') {
    const mid = (s.bid + s.ask) / 2;
    spread = mid > 0 ? (((s.ask - s.bid) / mid) * 1e4).toFixed(1) : '–';
  }
  set(s, 6, spread);
  set(s, 7, s.bidSize === undefined ? '–' : compactFmt.format(s.bidSize) + '×' + compactFmt.format(s.askSize));
  const b = s.bar;
  set(s, 8, b && typeof b.volume === 'number' ? compactFmt.format(b.volume) : '–');
  set(s, 9, fmtClock(s.updated));
  set(s, 10, intFmt.format(s.count));
  s.cells[9].title = s.updated ? new Date(s.updated).toString() : '';
  if (s.flash) {
    // Two identical animations under two names: switching the name restarts
    // the flash without forcing a layout. The class stays after it ends.
    s.flip = !s.flip;
    s.flashCls = 'flash-' + s.flash + (s.flip ? '-a' : '-b');
    s.flash = '';
  }
  const cls = 'num last ' + s.dir + (s.flashCls ? ' ' + s.flashCls : '');
  if (s.cells[1].className !== cls) s.cells[1].className = cls;
  if (s.sym === chartSym) drawChartQuote(s);
}

// --- day change and the chart -------------------------------------------------

// The day of a timestamp, in the page's time zone: replayed data keeps its
// own days.
const dayOf = (ms) => new Date(ms).toDateString();

// noteDayOpen keeps the open of the first bar seen of each symbol's latest
// day; dayRefFromHistory may replace it with the day's first retained bar.
function noteDayOpen(s, bar) {
  if (typeof bar.start !== 'number') return;
  const day = dayOf(bar.start);
  if (s.day !== day) {
    s.day = day;
    s.dayOpen = bar.open;
    s.dayOpenAt = bar.start;
  } else if (bar.start < s.dayOpenAt) {
    s.dayOpen = bar.open;
    s.dayOpenAt = bar.start;
  }
  if (!s.dayAsked) {
    s.dayAsked = true;
    dayRefFromHistory(s);
  }
}

// dayRefFromHistory asks for the oldest retained bar (after=0-0, limit=1):
// if it is of the same day, its open is the day's reference price. At most
// DAY_REF_LOOKUPS symbols are asked, one at a time, to stay well inside the
// server's per-user history rate.
const DAY_REF_LOOKUPS = 12;
let dayRefQueue = Promise.resolve();
let dayRefAsked = 0;
function dayRefFromHistory(s) {
  if (dayRefAsked >= DAY_REF_LOOKUPS) return;
  dayRefAsked++;
  dayRefQueue = dayRefQueue.then(async () => {
    try {
      const { events } = await client.history('bar:' + s.sym, { after: '0-0', limit: 1 });
      const b = events[0] && events[0].data;
      if (b && typeof b.start === 'number' && dayOf(b.start) === s.day && b.start < s.dayOpenAt) {
        s.dayOpen = b.open;
        s.dayOpenAt = b.start;
        dirty.add(s);
        schedule();
      }
    } catch (err) {
      log('day open of ' + s.sym + ' unknown: ' + err.code, 'warn');
    }
  });
}

function dayChange(s) {
  if (typeof s.last !== 'number' || !(s.dayOpen > 0)) return null;
  return ((s.last - s.dayOpen) / s.dayOpen) * 100;
}

let chart = null;
let chartSym = '';
let chartGen = 0;

function drawChartQuote(s) {
  $('c-last').textContent = fmtNum(s.last, s.dp);
  const chg = dayChange(s);
  const el = $('c-chg');
  el.textContent = chg === null ? '' : (chg > 0 ? '+' : '') + chg.toFixed(2) + '% today';
  el.className = 'c-chg' + (chg > 0 ? ' up' : chg < 0 ? ' down' : '');
  chart.dp = s.dp;
}

// showSymbol fills the chart from /v1/history (bars and signals), then
// live bar events move it (apply calls chart.upsert).
async function showSymbol(sym) {
  if (!sym || sym === chartSym) return;
  chartSym = sym;
  const gen = ++chartGen;
  const sel = $('symbol');
  if (sel.value !== sym) sel.value = sym;
  chart.reset('loading ' + sym + '…');
  const s = symbols.get(sym);
  if (s) drawChartQuote(s);
  try {
    const [bars, sigs] = await Promise.all([
      client.history('bar:' + sym, { limit: 1000 }),
      client.history('signal:' + sym, { limit: 200 }),
    ]);
    if (gen !== chartGen) return;
    for (const ev of bars.events) chart.upsert(ev.data);
    for (const ev of sigs.events) chart.addSignal({ ts: ev.ts, signal: ev.data.signal, price: ev.data.price });
    $('c-info').textContent = '1-second bars · ' + bars.events.length + ' from history';
    if (!bars.events.length) chart.message = 'no bars of ' + sym + ' yet';
    chart.update();
  } catch (err) {
    if (gen !== chartGen) return;
    chart.message = 'history of ' + sym + ' unavailable: ' + err.code;
    chart.update();
    log('history of ' + sym + ': ' + err.code + (err.message ? ' (' + err.message + ')' : ''), 'warn');
  }
}

function addSymbolOption(sym) {
  const sel = $('symbol');
  const opt = document.createElement('option');
  opt.value = opt.textContent = sym;
  const after = [...sel.options].find((o) => o.value > sym);
  sel.insertBefore(opt, after || null);
  if (chartSym) sel.value = chartSym; // the chart's symbol may come before its option
  if (!chartSym) showSymbol(param('symbol').toUpperCase() || sym);
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
      ['t', fmtClock(t.ts)],
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
      ['t', fmtClock(g.ts)],
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
  if (e.code === 'origin_refused') {
    const el = $('gap');
    el.textContent = 'Refused: ' + e.message + '. Ask the operator to add this origin, or open the page from an allowed one.';
    el.hidden = false;
  }
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
  const transport = param('transport');
  client = new TickwireClient({
    url: param('ws') ? param('ws').split(',') : undefined,
    transport: transport === 'sse' || transport === 'websocket' ? transport : 'auto',
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
  chart = new CandleChart($('chart'));
  globalThis.tickwireChart = chart; // for the browser test
  $('symbol').addEventListener('change', (e) => showSymbol(e.target.value));
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
