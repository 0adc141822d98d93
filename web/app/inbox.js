// The inbox: tabs New / Mine / Closed (mine, finished) / All, rows kept live from the store.
import { api } from './api.js';
import { h, clear, icon } from './dom.js';
import { t, waitingFor, statusLabel } from './i18n.js';
import { store, subscribe, inView, putRows } from './store.js';
import { createSearch } from './search.js';

const VIEWS = ['new', 'mine', 'closed', 'all'];

export function createInbox(ctx) {
  const views = VIEWS.filter((v) => v !== 'all' || store.me.is_admin);
  let view = views.includes(ctx.route.view) ? ctx.route.view : 'new';
  let activeId = null;
  let loading = false;
  let error = null;
  const counts = {};
  const tabs = {};

  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': t('inbox_tabs') });
  for (const v of views) {
    counts[v] = h('span', { class: 'count', 'aria-hidden': 'false' }, '0');
    tabs[v] = h('a', {
      class: 'tab', role: 'tab', href: `#/inbox/${v}`, id: `tab-${v}`, 'data-testid': `tab-${v}`,
      'aria-controls': 'inbox-list',
    }, h('span', null, t(`tab_${v}`)), ' ', counts[v]);
    tabs[v].addEventListener('keydown', (e) => {
      const i = views.indexOf(v);
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        e.preventDefault();
        const next = views[(i + (e.key === 'ArrowRight' ? 1 : views.length - 1)) % views.length];
        location.hash = `#/inbox/${next}`;
        tabs[next].focus();
      }
    });
    tablist.append(tabs[v]);
  }
  const list = h('ul', { class: 'inbox-list', id: 'inbox-list', role: 'tabpanel', 'aria-busy': 'false' });
  const status = h('p', { class: 'inbox-empty', role: 'status' });
  let searching = false;   // the search's results stand in for the tabs and the list
  const search = createSearch({ onActive: (active) => { searching = active; draw(); } });
  const el = h('section', { class: 'inbox-pane', 'aria-label': t('inbox') }, search.form, tablist, status, list,
    search.results);

  function rowsOf(v) {
    return [...store.rows.values()].filter((r) => inView(r, v))
      .sort((a, b) => (b.last_message_at || b.started_at || '').localeCompare(a.last_message_at || a.started_at || ''));
  }

  let scheduled = false;
  function render() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; draw(); });
  }

  function draw() {
    for (const v of views) {
      const selected = v === view;
      tabs[v].setAttribute('aria-selected', String(selected));
      tabs[v].tabIndex = selected ? 0 : -1;
      tabs[v].classList.toggle('active', selected);
      const n = rowsOf(v).length;
      counts[v].textContent = String(n);
      counts[v].setAttribute('aria-label', t('count_conversations', { n }));
    }
    list.setAttribute('aria-labelledby', `tab-${view}`);
    const focusedId = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.dataset.conversationId : null;
    const rows = rowsOf(view);
    clear(list);
    for (const row of rows) list.append(h('li', null, rowEl(row)));
    if (error) status.textContent = error;
    else if (loading && !rows.length) status.textContent = t('loading');
    else status.textContent = rows.length ? '' : t(`empty_${view}`);
    status.hidden = searching || !status.textContent;
    tablist.hidden = searching;
    list.hidden = searching;
    if (focusedId) {
      const again = list.querySelector(`[data-conversation-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  function rowEl(row) {
    const name = row.visitor_name || row.identity?.name || t('visitor');
    const unread = row.unread > 0 ? h('span', { class: 'badge', 'aria-label': t('unread_n', { n: row.unread }) }, String(row.unread)) : null;
    const waiting = row.waiting_since
      ? h('span', { class: 'waiting', title: t('waiting') }, icon('clock'), h('span', { 'data-since': row.waiting_since }, waitingFor(row.waiting_since)))
      : null;
    const who = row.assignee_name ? h('span', { class: 'assignee' }, row.assignee_name) : h('span', { class: 'assignee muted' }, t('unassigned'));
    const a = h('a', {
      class: `inbox-row${row.id === activeId ? ' active' : ''}${row.unread > 0 ? ' has-unread' : ''}`,
      href: `#/inbox/${view}/${row.id}`, 'data-testid': 'inbox-row', 'data-conversation-id': row.id,
      'aria-current': row.id === activeId ? 'true' : null,
    },
    h('span', { class: 'row-top' }, h('strong', { class: 'row-name' }, name), waiting, unread),
    h('span', { class: 'row-preview' }, row.last_message_from === 'operator' && !row.erased_at ? `${t('you_prefix')} ` : '',
      preview(row.last_message_text, row.erased_at)),
    h('span', { class: 'row-meta' }, h('span', { class: `status status-${row.status}` }, statusLabel(row.status)),
      row.left_while_closed ? h('span', { class: 'status status-closed', 'data-testid': 'left-while-closed',
        title: t('left_while_closed_hint') }, t('left_while_closed')) : null, who));
    return a;
  }

  /** The last message; a file's "📎 name" (inbox.py) gets the app's own clip icon, since
   *  operators' machines may have no emoji font and would draw an empty box. */
  function preview(text, erasedAt) {
    if (erasedAt) return t('erased');
    if (!text) return t('no_messages');
    if (!text.startsWith('📎 ')) return text;
    return [icon('clip'), h('span', { class: 'visually-hidden' }, t('attachment')), ' ', text.slice(3)];
  }

  async function fetchView(v) {
    const body = await api('GET', `/api/inbox?view=${v}`);
    putRows(body.conversations, { view: v });
  }

  async function refresh() {
    loading = true; error = null; list.setAttribute('aria-busy', 'true'); render();
    try {
      await Promise.all(views.map(fetchView));
    } catch (e) {
      if (e.status !== 401) error = e.message || t('network_error');
    } finally {
      loading = false; list.setAttribute('aria-busy', 'false'); render();
    }
  }

  const unsubscribe = subscribe(render);
  render();

  return {
    el,
    refresh,
    get view() { return view; },
    setView(v) { view = views.includes(v) ? v : 'new'; render(); },
    setActive(id) { activeId = id; render(); },
    destroy() { unsubscribe(); },
  };
}
