// Search across history (GET /api/search): a box above the inbox tabs; while it holds a
// query its results stand in for the inbox list - who, what kind, when, the snippet with
// the matched words marked - a page at a time ("More results"). Esc or ✕ goes back to
// the inbox. Snippets arrive as [{text, match}] and are set as text, never as HTML.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t, formatDateTime, statusLabel } from './i18n.js';
import { store } from './store.js';

const DEBOUNCE_MS = 300;

export function createSearch({ onActive }) {
  const input = h('input', { type: 'search', class: 'search-input', id: 'search-input', 'data-testid': 'search-input',
    placeholder: t('search_placeholder'), 'aria-label': t('search_label'), autocomplete: 'off', maxlength: '200',
    enterkeyhint: 'search' });
  const clearButton = h('button', { class: 'btn btn-ghost btn-small search-clear', type: 'button', hidden: true,
    'data-testid': 'search-clear', 'aria-label': t('search_clear'), onclick: () => reset(true) }, '✕');
  const form = h('form', { class: 'search-form', role: 'search', onsubmit: (e) => { e.preventDefault(); run(); } },
    input, clearButton);
  const status = h('p', { class: 'inbox-empty', role: 'status', 'data-testid': 'search-status' });
  const list = h('ul', { class: 'inbox-list search-results', 'data-testid': 'search-results', 'aria-label': t('search_results') });
  const more = h('button', { class: 'btn btn-small search-more', type: 'button', hidden: true, 'data-testid': 'search-more',
    onclick: () => run(next) }, t('search_more'));
  const results = h('div', { class: 'search-pane', hidden: true }, status, list, more);
  let timer = null, token = 0, next = null, query = '';

  input.addEventListener('input', () => {
    clearTimeout(timer);
    clearButton.hidden = !input.value;
    if (!input.value.trim()) { reset(false); return; }
    timer = setTimeout(() => run(), DEBOUNCE_MS);
  });
  input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); reset(true); } });

  function show(active) {
    results.hidden = !active;
    onActive(active);
  }

  function reset(focus) {
    clearTimeout(timer);
    token++;
    input.value = ''; query = ''; next = null;
    clearButton.hidden = true;
    clear(list);
    show(false);
    if (focus) input.focus();
  }

  async function run(after = null) {
    const q = input.value.trim();
    if (!q) return;
    const mine = ++token;
    if (!after) { query = q; clear(list); }
    show(true);
    status.textContent = t('loading');
    status.hidden = false;
    more.hidden = true;
    try {
      const body = await api('GET', `/api/search?q=${encodeURIComponent(query)}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      if (mine !== token) return;
      for (const r of body.results) list.append(h('li', null, resultEl(r)));
      next = body.next;
      more.hidden = !next;
      if (after) status.textContent = '';
      else status.textContent = list.children.length ? (body.capped ? t('search_capped') : '')
        : t(body.capped ? 'search_capped_none' : 'search_nothing', { q: query });
      status.hidden = !status.textContent;
    } catch (e) {
      if (mine === token) status.textContent = e.message || t('network_error');
    }
  }

  function resultEl(r) {
    const c = r.conversation;
    const snippet = h('span', { class: 'row-preview search-snippet' },
      r.snippet.map((part) => (part.match ? h('mark', null, part.text) : part.text)));
    return h('a', { class: 'inbox-row', href: `#/inbox/${viewOf(c)}/${r.conversation_id}`, 'data-testid': 'search-result',
      'data-conversation-id': r.conversation_id },
    h('span', { class: 'row-top' }, h('strong', { class: 'row-name' }, c.visitor_name || t('visitor')),
      h('span', { class: 'muted small' }, `${t(`search_kind_${r.kind}`)} · ${formatDateTime(r.at)}`)),
    snippet,
    h('span', { class: 'row-meta' }, h('span', { class: `status status-${c.status}` }, statusLabel(c.status)),
      h('span', { class: `assignee${c.assignee_name ? '' : ' muted'}` }, c.assignee_name || t('unassigned'))));
  }

  /** The inbox view a result opens in: where the conversation is listed for this operator. */
  function viewOf(c) {
    const mineNow = c.assignee_id === store.me.id;
    if (!c.assignee_id && c.status === 'new') return 'new';
    if (mineNow) return c.status === 'closed' ? 'closed' : 'mine';
    return 'all';
  }

  return { form, results, focus: () => input.focus() };
}
