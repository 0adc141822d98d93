// Settings › Privacy › Audit log (owner and admins; issue 20): who did what and when,
// newest first, read through GET /api/project/audit with its cursor. Entries name
// operators and settings; they never hold a visitor's data. Read-only: there is no
// control that changes one.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t, formatDateTime } from './i18n.js';

const MAX_PAGES = 20;   // 10,000 entries at most on one screen: older ones stay in the API

function what(e) {
  const target = e.target && (e.target.name || e.target.id);
  const d = e.detail || {};
  switch (e.action) {
    case 'operator.role_changed': return t(d.is_admin ? 'audit_made_admin' : 'audit_made_operator', { name: target });
    case 'operator.changed': return t('audit_operator.changed', { name: target, fields: (d.fields || []).join(', ') });
    case 'settings.chat': return t(d.enabled ? 'audit_chat_on' : 'audit_chat_off');
    case 'settings.retention': return d.erase_after_days ? t('audit_retention_days', { n: d.erase_after_days }) : t('audit_retention_off');
    case 'privacy.exported':
    case 'privacy.erasure_requested':
      return t(`audit_${e.action}`, { kind: t(`privacy_by_${d.subject}`), n: d.conversations ?? 0 });
    default: return t(`audit_${e.action}`, { name: target });
  }
}

export function auditLog() {
  const body = h('tbody');
  const note = h('p', { class: 'muted', 'data-testid': 'audit-note' });
  const refresh = h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'audit-refresh' }, t('audit_refresh'));
  const card = h('section', { class: 'card audit-log', 'aria-labelledby': 'audit-title' },
    h('div', { class: 'audit-head' }, h('h4', { id: 'audit-title' }, t('audit_title')), refresh),
    h('p', { class: 'muted' }, t('audit_intro')),
    h('table', { class: 'table', 'data-testid': 'audit-log' },
      h('thead', null, h('tr', null, ...['audit_when', 'audit_who', 'audit_what'].map((k) => h('th', { scope: 'col' }, t(k))))),
      body), note);

  async function load() {
    refresh.disabled = true;
    note.textContent = t('loading');
    try {
      const entries = [];
      let after = '0';
      for (let page = 0; page < MAX_PAGES; page += 1) {
        const got = await api('GET', `/api/project/audit?after=${encodeURIComponent(after)}&limit=500`);
        entries.push(...got.entries);
        after = got.next;
        if (!got.more) break;
      }
      entries.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
      clear(body).append(...entries.map((e) => h('tr', { 'data-action': e.action },
        h('td', null, formatDateTime(e.at)), h('td', null, e.by.name || e.by.id), h('td', null, what(e)))));
      note.textContent = entries.length ? '' : t('audit_empty');
    } catch (err) { note.textContent = err.message || t('network_error'); }
    refresh.disabled = false;
  }
  refresh.addEventListener('click', load);
  load();
  return card;
}
