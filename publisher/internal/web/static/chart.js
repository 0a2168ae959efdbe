// chart.js: a candlestick chart of 1-second bars on a <canvas>, with volume
// under the candles and signals as markers. No dependencies. Updates only
// mark the chart dirty; it is drawn at most once per animation frame.

const MAX_BARS = 1200; // kept in memory; the width decides how many show
const COLORS = {
  bg: '#10161e',
  grid: '#1a2430',
  text: '#7d8b9a',
  up: '#1fc46e',
  down: '#ff4f61',
  warn: '#f0b429',
  last: '#4aa3ff',
};

const pad2 = (n) => (n < 10 ? '0' : '') + n;

export class CandleChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.bars = []; // oldest first: {start, end, open, high, low, close, volume}
    this.signals = []; // {ts, signal, price}
    this.dp = 2;
    this.message = 'loading…';
    /** Candles drawn by the last draw (for tests and the page). */
    this.drawn = 0;
    this._queued = false;
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => this.update()).observe(canvas);
    }
  }

  /** Replaces every bar and signal (a new symbol). */
  reset(message = 'loading…') {
    this.bars = [];
    this.signals = [];
    this.message = message;
    this.update();
  }

  /** Adds a bar, or replaces the one with the same start. Bars may come
   * in any order (history, then live, overlapping). */
  upsert(bar) {
    if (!bar || typeof bar.start !== 'number' || typeof bar.close !== 'number') return;
    const bars = this.bars;
    let i = bars.length;
    while (i > 0 && bars[i - 1].start > bar.start) i--;
    if (i > 0 && bars[i - 1].start === bar.start) bars[i - 1] = bar;
    else bars.splice(i, 0, bar);
    if (bars.length > MAX_BARS) bars.splice(0, bars.length - MAX_BARS);
    this.update();
  }

  addSignal(sig) {
    if (!sig || typeof sig.ts !== 'number') return;
    this.signals.push(sig);
    if (this.signals.length > 500) this.signals.shift();
    this.update();
  }

  update() {
    if (this._queued) return;
    this._queued = true;
    requestAnimationFrame(() => {
      this._queued = false;
      this.draw();
    });
  }

  draw() {
    const c = this.canvas;
    const dpr = globalThis.devicePixelRatio || 1;
    const w = Math.max(1, Math.floor(c.clientWidth));
    const h = Math.max(1, Math.floor(c.clientHeight));
    if (c.width !== w * dpr || c.height !== h * dpr) {
      c.width = w * dpr;
      c.height = h * dpr;
    }
    const g = this.ctx;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = COLORS.bg;
    g.fillRect(0, 0, w, h);
    g.font = '11px ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace';
    const axisW = 70;
    const axisH = 18;
    const plotW = w - axisW;
    const step = 8; // px per candle
    const n = Math.max(0, Math.min(this.bars.length, Math.floor((plotW - 4) / step)));
    const bars = this.bars.slice(this.bars.length - n);
    this.drawn = bars.length;
    if (bars.length === 0) {
      g.fillStyle = COLORS.text;
      g.fillText(this.message, 12, 20);
      return;
    }
    const volH = Math.floor((h - axisH) * 0.2);
    const priceH = h - axisH - volH - 12;
    let lo = Infinity;
    let hi = -Infinity;
    let vmax = 0;
    for (const b of bars) {
      lo = Math.min(lo, b.low);
      hi = Math.max(hi, b.high);
      vmax = Math.max(vmax, b.volume || 0);
    }
    if (hi === lo) {
      hi += 0.5;
      lo -= 0.5;
    }
    const margin = (hi - lo) * 0.08;
    hi += margin;
    lo -= margin;
    const y = (p) => 6 + ((hi - p) / (hi - lo)) * priceH;
    const x0 = plotW - bars.length * step;

    // Grid and price axis.
    g.strokeStyle = COLORS.grid;
    g.lineWidth = 1;
    g.fillStyle = COLORS.text;
    const ticks = niceTicks(lo, hi, Math.max(2, Math.floor(priceH / 45)));
    for (const t of ticks) {
      const yy = Math.round(y(t)) + 0.5;
      g.beginPath();
      g.moveTo(0, yy);
      g.lineTo(plotW, yy);
      g.stroke();
      g.fillText(t.toFixed(this.dp), plotW + 6, yy + 4);
    }

    // Volume, then candles.
    const volTop = h - axisH - volH;
    for (let i = 0; i < bars.length; i++) {
      const b = bars[i];
      const up = b.close >= b.open;
      const x = x0 + i * step;
      if (vmax > 0 && b.volume > 0) {
        const vh = Math.max(1, (b.volume / vmax) * (volH - 2));
        g.fillStyle = up ? 'rgba(31,196,110,0.35)' : 'rgba(255,79,97,0.35)';
        g.fillRect(x + 1, volTop + volH - vh, step - 2, vh);
      }
      g.strokeStyle = g.fillStyle = up ? COLORS.up : COLORS.down;
      const cx = Math.round(x + step / 2) + 0.5;
      g.beginPath();
      g.moveTo(cx, y(b.high));
      g.lineTo(cx, y(b.low));
      g.stroke();
      const top = y(Math.max(b.open, b.close));
      const bh = Math.max(1, Math.abs(y(b.open) - y(b.close)));
      g.fillRect(x + 1, top, step - 2, bh);
    }

    // Signals, on the candle of their second.
    for (const s of this.signals) {
      const i = indexOf(bars, s.ts);
      if (i < 0) continue;
      const b = bars[i];
      const cx = x0 + i * step + step / 2;
      if (s.signal === 'new_high') marker(g, cx, y(b.high) - 8, 'up');
      else if (s.signal === 'new_low') marker(g, cx, y(b.low) + 8, 'down');
      else marker(g, cx, y(b.high) - 8, 'surge');
    }

    // Last price line and label.
    const last = bars[bars.length - 1].close;
    const ly = Math.round(y(last)) + 0.5;
    g.strokeStyle = COLORS.last;
    g.setLineDash([3, 3]);
    g.beginPath();
    g.moveTo(0, ly);
    g.lineTo(plotW, ly);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = COLORS.last;
    g.fillRect(plotW + 1, ly - 8, axisW - 2, 16);
    g.fillStyle = '#04101d';
    g.fillText(last.toFixed(this.dp), plotW + 6, ly + 4);

    // Time axis: a label every ~90 px, with the date when it changes.
    g.fillStyle = COLORS.text;
    const every = Math.max(1, Math.round(90 / step));
    let lastDay = '';
    for (let i = bars.length - 1; i >= 0; i -= every) {
      const d = new Date(bars[i].start);
      const day = d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
      let label = pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
      if (i - every < 0 && day !== lastDay) label = day + ' ' + label;
      lastDay = day;
      const tw = g.measureText(label).width;
      const x = Math.min(plotW - tw, Math.max(0, x0 + i * step + step / 2 - tw / 2));
      g.fillText(label, x, h - 5);
    }
  }
}

// indexOf finds the bar whose second holds ts, by binary search.
function indexOf(bars, ts) {
  let lo = 0;
  let hi = bars.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const b = bars[mid];
    const end = b.end > b.start ? b.end : b.start + 1000;
    if (ts < b.start) hi = mid - 1;
    else if (ts >= end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

function marker(g, x, y, kind) {
  g.fillStyle = kind === 'up' ? COLORS.up : kind === 'down' ? COLORS.down : COLORS.warn;
  g.beginPath();
  if (kind === 'up') {
    g.moveTo(x, y - 5);
    g.lineTo(x - 5, y + 4);
    g.lineTo(x + 5, y + 4);
  } else if (kind === 'down') {
    g.moveTo(x, y + 5);
    g.lineTo(x - 5, y - 4);
    g.lineTo(x + 5, y - 4);
  } else {
    g.moveTo(x, y - 5);
    g.lineTo(x + 5, y);
    g.lineTo(x, y + 5);
    g.lineTo(x - 5, y);
  }
  g.closePath();
  g.fill();
}

// niceTicks returns round prices between lo and hi, about n of them.
function niceTicks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(t);
  return out;
}
