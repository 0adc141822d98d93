// CSAT for admins (issue 13, item 4): GET /api/ratings?weeks=N - per operator over the
// period, per operator and week, and the latest ratings with their comments. One section of
// the settings page, loaded on demand. API strings always go in as text nodes.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t, formatDateTime } from './i18n.js';

const PERIODS = [4, 8, 12, 26, 52];

function table(testid, head, rows) {
  return h('table', { class: 'table', 'data-testid': testid },
    h('thead', null, h('tr', null, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, ...rows.map((r) => h('tr', null, ...r.map((c) => h('td', null, c == null ? '' : String(c)))))));
}

export async function ratingsSection(node) {
  const select = h('select', { id: 'ratings-weeks', 'data-testid': 'ratings-weeks' },
    ...PERIODS.map((n) => h('option', { value: String(n), selected: n === 8 }, t('ratings_weeks', { n }))));
  const out = h('div', { class: 'ratings', 'aria-live': 'polite' });
  node.append(h('label', { class: 'inline-label', for: 'ratings-weeks' }, t('ratings_period'), ' ', select), out);
  const who = (r) => r.operator_name || t('ratings_nobody');

  async function draw() {
    const data = await api('GET', `/api/ratings?weeks=${encodeURIComponent(select.value)}`);
    clear(out);
    if (!data.by_operator.length) { out.append(h('p', { class: 'muted', 'data-testid': 'ratings-none' }, t('ratings_none'))); }
    else {
      out.append(h('h4', null, t('ratings_by_operator')), table('ratings-by-operator',
        [t('ratings_operator'), t('ratings_count'), t('ratings_average')],
        data.by_operator.map((r) => [who(r), r.ratings, r.average.toFixed(2)])));
      out.append(h('h4', null, t('ratings_by_week')), table('ratings-by-week',
        [t('ratings_week'), t('ratings_operator'), t('ratings_count'), t('ratings_average')],
        data.by_week.map((r) => [r.week, who(r), r.ratings, r.average.toFixed(2)])));
    }
    if (data.recent.length) {
      out.append(h('h4', null, t('ratings_recent')), table('ratings-recent',
        [t('ratings_rated_at'), t('ratings_operator'), t('ratings_rating'), t('ratings_comment')],
        data.recent.map((r) => [formatDateTime(r.rated_at), who(r), `${r.rating} / 5`, r.comment || ''])));
    }
  }
  select.addEventListener('change', () => draw().catch((e) => {
    clear(out).append(h('p', { class: 'error', role: 'alert' }, e.message || t('network_error')));
  }));
  await draw();
}
