// Visitors on the site now (GET /api/visitors/live, then the `visitors` frames the socket
// sends while this page is shown - watch_visitors): who is where, since when, from which
// source, with what params, and whether they chat. "Invite" sends an operator's words to
// a visitor who is not chatting (POST /api/visitors/{id}/invite): the widget opens with
// them, and the visitor's answer starts a conversation that is this operator's.
// Every text from the site goes in as text, never as HTML.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t } from './i18n.js';

export function createVisitors({ watch, openConversation, toastError }) {
  const visits = new Map();
  const count = h('span', { class: 'count', 'data-testid': 'visitors-count' });
  const status = h('p', { class: 'inbox-empty', role: 'status', 'data-testid': 'visitors-status' });
  const body = h('tbody');
  const table = h('table', { class: 'visitors-table', 'data-testid': 'visitors-table' },
    h('thead', null, h('tr', null, ...['visitors_who', 'visitors_page', 'visitors_pages', 'visitors_time',
      'visitors_source', 'visitors_state', ''].map((k) => h('th', { scope: 'col' }, k ? t(k) : '')))), body);
  const el = h('section', { class: 'visitors-page', hidden: true, 'aria-labelledby': 'visitors-title' },
    h('h1', { id: 'visitors-title' }, t('visitors_title'), ' ', count),
    h('p', { class: 'hint' }, t('visitors_hint')), status, table);
  let shown = false, timer = null;

  async function show() {
    el.hidden = false;
    if (shown) return;
    shown = true;
    watch(true);   // changes from now on; the list below is at least as new
    status.textContent = t('loading');
    try {
      const answer = await api('GET', '/api/visitors/live');
      visits.clear();
      for (const v of answer.visitors) visits.set(v.visitor_id, v);
      draw();
    } catch (e) { status.textContent = e.message || t('error'); }
    timer = setInterval(tick, 1000);
  }

  function hide() {
    el.hidden = true;
    if (!shown) return;
    shown = false;
    watch(false);
    clearInterval(timer);
  }

  function apply(frame) {   // {type: 'visitors', seen: [visit], left: [visitor_id]}
    if (!shown) return;
    for (const v of frame.seen || []) visits.set(v.visitor_id, v);
    for (const id of frame.left || []) visits.delete(id);
    draw();
  }

  function onSite(startedAt) {
    const minutes = Math.max(0, Math.floor((Date.now() - startedAt) / 60000));
    return minutes < 60 ? t('d_m', { n: minutes }) : t('d_hm', { h: Math.floor(minutes / 60), m: minutes % 60 });
  }
  function tick() { for (const cell of body.querySelectorAll('[data-started]')) cell.textContent = onSite(+cell.dataset.started); }

  function source(v) {
    const utm = v.utm || {};
    if (utm.utm_source) return [utm.utm_source, utm.utm_medium, utm.utm_campaign].filter(Boolean).join(' / ');
    if (v.referrer) { try { return new URL(v.referrer).host; } catch { return v.referrer; } }
    return t('visitors_direct');
  }

  function row(v) {
    const name = (v.params && (v.params.name || v.params.email)) || `${t('visitor')} ${v.visitor_id.slice(-4)}`;
    const page = v.url ? h('a', { href: v.url, target: '_blank', rel: 'noopener noreferrer', title: v.url }, v.title || v.url) : '—';
    const params = Object.entries(v.params || {}).map(([k, val]) => `${k}: ${val}`).join(', ');
    const state = v.chatting
      ? h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'visitor-open',
        onclick: () => openConversation(v.conversation_id) }, t('visitors_chatting'))
      : v.invitation ? h('span', { class: 'badge', 'data-testid': 'visitor-invited' }, t('visitors_invited', { name: v.invitation.operator_name }))
        : h('span', { class: 'muted' }, t('visitors_browsing'));
    const invite = v.chatting ? null : h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'visitor-invite',
      onclick: () => inviteForm(v, name) }, t('visitors_invite'));
    const tr = h('tr', { 'data-visitor': v.visitor_id, 'data-testid': 'visitor-row' },
      h('td', null, h('div', null, name), params ? h('div', { class: 'muted small' }, params) : null),
      h('td', { class: 'visitor-page' }, page), h('td', null, String(v.pages_seen)),
      h('td', { 'data-started': v.started_at }, onSite(v.started_at)), h('td', null, source(v)), h('td', null, state),
      h('td', null, invite));
    return tr;
  }

  // One invitation at a time, above the list: the list redraws as visitors move, the words being typed stay.
  const inviteText = h('textarea', { rows: 2, maxlength: 1000, 'data-testid': 'invite-text',
    'aria-label': t('visitors_invite_text'), placeholder: t('visitors_invite_placeholder') });
  const inviteTitle = h('h2', null);
  const inviteSend = h('button', { class: 'btn btn-primary btn-small', type: 'submit', 'data-testid': 'invite-send' }, t('visitors_invite_send'));
  let invitee = null;
  const invitePanel = h('form', { class: 'invite-form card', hidden: true, 'data-testid': 'invite-form', onsubmit: async (e) => {
    e.preventDefault();
    inviteSend.disabled = true;
    try {
      await api('POST', `/api/visitors/${encodeURIComponent(invitee)}/invite`, { text: inviteText.value });
      invitePanel.hidden = true;
    } catch (err) { toastError(err); }
    inviteSend.disabled = false;
  } }, inviteTitle, inviteText, h('div', { class: 'row' }, inviteSend,
    h('button', { class: 'btn btn-ghost btn-small', type: 'button', onclick: () => { invitePanel.hidden = true; } }, t('cancel'))));
  status.before(invitePanel);

  function inviteForm(v, name) {
    invitee = v.visitor_id;
    inviteTitle.textContent = t('visitors_invite_title', { name });
    if (!inviteText.value) inviteText.value = t('visitors_invite_default');
    invitePanel.hidden = false;
    inviteText.focus();
  }

  function draw() {
    const list = [...visits.values()].sort((a, b) => b.started_at - a.started_at);
    clear(body).append(...list.map(row));
    count.textContent = `(${list.length})`;
    status.textContent = list.length ? '' : t('visitors_none');
    status.hidden = !!list.length;
    table.hidden = !list.length;
  }

  return { el, show, hide, apply };
}
