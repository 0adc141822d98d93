// Reports (admins; GET /api/reports): conversations, missed, first response (median and
// p90, in working time), resolution, offers expired and CSAT, per day of the project's
// time zone or per operator, for a period (the last 7 days at first), with a chart drawn
// here as SVG (no library, no CDN) and the same figures as CSV.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const COLUMNS = ['conversations', 'missed', 'first_response_median_s', 'first_response_p90_s', 'resolution_median_s',
  'resolution_p90_s', 'offers_expired', 'csat_average', 'csat_count'];

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  el.append(...kids);
  return el;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return t('d_s', { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t('d_m', { n: m });
  return t('d_hm', { h: Math.floor(m / 60), m: m % 60 });
}

function cell(key, value) {
  if (key.endsWith('_s')) return duration(value);
  if (value === null || value === undefined) return '—';
  return String(value);
}

// Conversations per row as bars, the missed part darker; labels under every bar.
function chart(rows, label) {
  const width = 720, height = 220, pad = 28, top = 12;
  const most = Math.max(1, ...rows.map((r) => r.conversations));
  const step = (width - pad) / Math.max(1, rows.length), bar = Math.max(6, Math.min(48, step * 0.6));
  const el = svg('svg', { viewBox: `0 0 ${width} ${height + 40}`, class: 'report-chart', role: 'img',
    'aria-label': t('reports_chart_label'), 'data-testid': 'report-chart' });
  el.append(svg('line', { x1: pad, y1: top + height, x2: width, y2: top + height, class: 'axis' }));
  el.append(svg('text', { x: 0, y: top + 10, class: 'tick' }, String(most)));
  rows.forEach((r, i) => {
    const x = pad + i * step + (step - bar) / 2;
    const all = (r.conversations / most) * height, missed = (r.missed / most) * height;
    el.append(svg('rect', { x, y: top + height - all, width: bar, height: all, class: 'bar', 'data-value': r.conversations },
      svg('title', null, `${label(r)}: ${r.conversations} / ${t('reports_missed').toLowerCase()} ${r.missed}`)));
    if (missed) el.append(svg('rect', { x, y: top + height - missed, width: bar, height: missed, class: 'bar-missed' }));
    el.append(svg('text', { x: x + bar / 2, y: top + height + 16, class: 'tick', 'text-anchor': 'middle' }, label(r).slice(-5)));
  });
  return el;
}

export async function reportsSection(node) {
  const today = new Date();
  const iso = (d) => d.toISOString().slice(0, 10);
  const from = h('input', { type: 'date', id: 'report-from', 'data-testid': 'report-from',
    value: iso(new Date(today.getTime() - 7 * 86400000)) });
  const to = h('input', { type: 'date', id: 'report-to', 'data-testid': 'report-to', value: iso(new Date(today.getTime() - 86400000)) });
  const group = h('select', { id: 'report-group', 'data-testid': 'report-group' },
    h('option', { value: 'day' }, t('reports_by_day')), h('option', { value: 'operator' }, t('reports_by_operator')));
  const status = h('p', { class: 'form-message', role: 'status', 'data-testid': 'report-status' });
  const csv = h('a', { class: 'btn btn-small', 'data-testid': 'report-csv', download: '' }, t('reports_csv'));
  const out = h('div', { class: 'report' });

  async function load() {
    const query = `from=${from.value}&to=${to.value}&group=${group.value}`;
    csv.href = `/api/reports?${query}&format=csv`;
    status.textContent = t('loading');
    try {
      const body = await api('GET', `/api/reports?${query}`);
      status.textContent = body.working_time ? t('reports_working_time', { zone: body.time_zone }) : t('reports_plain_time', { zone: body.time_zone });
      const label = (r) => (body.group === 'day' ? r.day : r.operator_name || t('reports_nobody'));
      const head = h('tr', null, h('th', { scope: 'col' }, body.group === 'day' ? t('reports_day') : t('reports_operator')),
        ...COLUMNS.map((c) => h('th', { scope: 'col' }, t(`reports_${c}`))));
      const line = (r, name, extra) => h('tr', { 'data-testid': 'report-row', ...extra }, h('th', { scope: 'row' }, name),
        ...COLUMNS.map((c) => h('td', { 'data-column': c }, cell(c, r[c]))));
      const table = h('table', { class: 'report-table', 'data-testid': 'report-table' }, h('thead', null, head),
        h('tbody', null, ...body.rows.map((r) => line(r, label(r), { 'data-key': label(r) })),
          line(body.total, t('reports_total'), { class: 'total', 'data-key': 'total' })));
      clear(out).append(chart(body.rows, label), table);
    } catch (err) { status.textContent = err.message; }
  }

  const form = h('form', { class: 'report-form', onsubmit: (e) => { e.preventDefault(); load(); } },
    h('label', { for: 'report-from' }, t('reports_from')), from, h('label', { for: 'report-to' }, t('reports_to')), to,
    group, h('button', { class: 'btn btn-primary btn-small', type: 'submit', 'data-testid': 'report-show' }, t('reports_show')), csv);
  group.addEventListener('change', load);
  node.append(h('p', { class: 'hint' }, t('reports_help')), form, status, out);
  await load();
}
