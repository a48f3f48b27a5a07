// Line charts in SVG (built with createElementNS; styled by app.css classes).
import { h, svg } from './dom.js';

const W = 600;
const H = 170;
const PAD = { l: 64, r: 10, t: 10, b: 22 };

/**
 * A line chart of one or more series over time.
 * @param {{
 *   series: Array<{label: string, points: Array<[number, number|null]>}>,
 *   max?: number, format?: (v: number) => string, title?: string, area?: boolean
 * }} opts points are [time ms, value]; null values break the line
 * @returns {HTMLElement} a figure with the chart and a legend with the last values
 */
export function lineChart({ series, max, format = (v) => String(Math.round(v)), title = '', area = true }) {
  const all = series.flatMap((s) => s.points).filter((p) => p[1] !== null && p[1] !== undefined);
  const fig = h('figure.chart-fig', { 'data-test': 'chart' });
  if (all.length === 0) {
    fig.appendChild(h('p.muted.small', null, 'No samples in this window.'));
    return fig;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  const vmax = max !== undefined ? max : niceMax(Math.max(...all.map((p) => p[1])));
  const x = (t) => PAD.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - Math.min(v, vmax) / (vmax || 1)) * (H - PAD.t - PAD.b);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title || series.map((s) => s.label).join(', ') });
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4;
    root.appendChild(svg('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: 'grid-line' }));
    root.appendChild(svg('text', { x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
  }
  root.appendChild(svg('text', { x: PAD.l, y: H - 5 }, clock(t0)));
  root.appendChild(svg('text', { x: W - PAD.r, y: H - 5, 'text-anchor': 'end' }, clock(t1)));
  series.forEach((s, idx) => {
    const cls = 's' + (idx % 4);
    const segments = [];
    let cur = [];
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { if (cur.length) segments.push(cur); cur = []; continue; }
      cur.push([x(t), y(v)]);
    }
    if (cur.length) segments.push(cur);
    for (const seg of segments) {
      const d = seg.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join(' ');
      if (area && series.length === 1 && seg.length > 1) {
        const base = y(0).toFixed(1);
        root.appendChild(svg('path', { d: `${d} L${seg[seg.length - 1][0].toFixed(1)} ${base} L${seg[0][0].toFixed(1)} ${base} Z`, class: 'area ' + cls }));
      }
      if (seg.length === 1) root.appendChild(svg('circle', { cx: seg[0][0], cy: seg[0][1], r: 2.5, class: cls }));
      else root.appendChild(svg('path', { d, class: 'series ' + cls }));
    }
  });
  fig.appendChild(root);
  const legend = h('figcaption.legend');
  series.forEach((s, idx) => {
    const last = [...s.points].reverse().find((p) => p[1] !== null && p[1] !== undefined);
    legend.appendChild(h('span', null, h('span.swatch', { class: 's' + (idx % 4) }), `${s.label}: `, h('strong', null, last ? format(last[1]) : '—')));
  });
  fig.appendChild(legend);
  return fig;
}

/**
 * Horizontal bars (label, bar, value text) for comparing groups.
 * @param {Array<{label: string, value: number, text?: string}>} items
 * @returns {HTMLElement}
 */
export function bars(items) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const el = h('div.bars');
  for (const item of items) {
    const fill = h('span');
    fill.style.width = `${(100 * item.value) / max}%`;
    el.appendChild(h('div.bar-row', null, h('span.nowrap', { title: item.label }, item.label), h('div.meter', null, fill), h('span.small.nowrap', null, item.text ?? String(item.value))));
  }
  return el;
}

/**
 * A meter (used / limit).
 * @param {number} used
 * @param {number} limit
 * @returns {HTMLElement}
 */
export function meter(used, limit) {
  const fill = h('span');
  fill.style.width = `${Math.min(100, (100 * used) / Math.max(1, limit))}%`;
  const el = h('div.meter', { role: 'meter', 'aria-valuenow': used, 'aria-valuemin': 0, 'aria-valuemax': limit }, fill);
  if (used >= limit) el.classList.add('full');
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * Turns an API series into chart points.
 * @param {Array<Object>} points items with `at`
 * @param {(p: Object) => number|null|undefined} get
 * @returns {Array<[number, number|null]>}
 */
export function toPoints(points, get) {
  return (points || []).map((p) => [Date.parse(p.at), get(p) ?? null]);
}
