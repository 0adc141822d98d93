// Settings › Privacy (owner and admins; issue 20): find a data subject by phone, email,
// visitor id or conversation id; export everything Parley holds about them as a JSON file;
// erase it, after a confirmation that says how many conversations go, and follow the
// erasure until it is done (conversations, messages, files, and the CRM leads to erase
// there). API strings always go in as text.
import { api, uuid } from './api.js';
import { h, clear, safeLink } from './dom.js';
import { t } from './i18n.js';
import { auditLog } from './audit.js';

const KINDS = ['phone', 'email', 'visitor_id', 'conversation_id'];

export async function privacySection(node) {
  const kind = h('select', { id: 'privacy-kind', 'data-testid': 'privacy-kind' },
    ...KINDS.map((k) => h('option', { value: k }, t(`privacy_by_${k}`))));
  const value = h('input', { type: 'text', id: 'privacy-value', 'data-testid': 'privacy-value', maxlength: '254',
    autocomplete: 'off', spellcheck: 'false' });
  const message = h('p', { class: 'form-message', role: 'status', 'aria-live': 'polite', 'data-testid': 'privacy-message' });
  const exportButton = h('button', { class: 'btn', type: 'button', 'data-testid': 'privacy-export' }, t('privacy_export'));
  const eraseButton = h('button', { class: 'btn btn-danger', type: 'button', 'data-testid': 'privacy-erase' }, t('privacy_erase'));
  const confirmBox = h('div', { class: 'privacy-confirm', hidden: true, role: 'alertdialog', 'data-testid': 'privacy-confirm',
    'aria-labelledby': 'privacy-confirm-text' });
  const result = h('div', { class: 'privacy-result', 'data-testid': 'privacy-result', 'aria-live': 'polite' });

  // Retention: closed conversations older than N days are erased by themselves.
  const days = h('input', { type: 'number', id: 'retention-days', 'data-testid': 'retention-days', min: '1', max: '3650',
    placeholder: t('retention_keep') });
  const retentionMessage = h('p', { class: 'form-message', role: 'status', 'data-testid': 'retention-message' });
  const retention = h('form', { class: 'card form-grid privacy-form', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const n = days.value.trim() ? Number(days.value) : null;
    try {
      const saved = await api('PUT', '/api/project/privacy/retention', { erase_after_days: n });
      retentionMessage.className = 'form-message ok';
      retentionMessage.textContent = saved.erase_after_days ? t('retention_saved', { n: saved.erase_after_days }) : t('retention_off');
    } catch (err) { retentionMessage.className = 'form-message error'; retentionMessage.textContent = err.message || t('network_error'); }
  } }, h('h4', null, t('retention_title')),
  h('div', { class: 'field' }, h('label', { for: 'retention-days' }, t('retention_days')), days,
    h('p', { class: 'field-hint' }, t('retention_hint'))),
  h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'retention-save' }, t('save'))),
  retentionMessage);
  api('GET', '/api/project/privacy/retention').then((r) => { days.value = r.erase_after_days ?? ''; }).catch(() => {});

  node.append(h('p', { class: 'muted' }, t('privacy_intro')),
    h('form', { class: 'card form-grid privacy-form', novalidate: true, onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'privacy-kind' }, t('privacy_find_by')), kind),
      h('div', { class: 'field' }, h('label', { for: 'privacy-value' }, t('privacy_value')), value),
      h('div', { class: 'form-actions' }, exportButton, eraseButton), message, confirmBox),
    result, retention, auditLog());

  const query = () => `${kind.value}=${encodeURIComponent(value.value.trim())}`;
  const say = (text, cls = 'error') => { message.textContent = text || ''; message.className = `form-message ${cls}`; };

  async function find() {
    if (!value.value.trim()) { say(t('privacy_value_required')); value.focus(); return null; }
    say('');
    try { return await api('GET', `/api/project/privacy/export?${query()}`); }
    catch (e) { say(e.message || t('network_error')); return null; }
  }

  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    const found = await find();
    exportButton.disabled = false;
    if (!found) return;
    const file = new Blob([JSON.stringify(found, null, 2)], { type: 'application/json' });
    const link = h('a', { href: URL.createObjectURL(file), download: `parley-export-${kind.value}.json`,
      'data-testid': 'privacy-download' }, t('privacy_download'));
    clear(result).append(h('p', null, t('privacy_exported', { n: found.conversations.length }), ' ', link));
    link.click();
  });

  eraseButton.addEventListener('click', async () => {
    eraseButton.disabled = true;
    const found = await find();
    eraseButton.disabled = false;
    if (!found) return;
    const n = found.conversations.length;
    const key = uuid();    // a retried click is the same erasure
    const go = h('button', { class: 'btn btn-danger', type: 'button', 'data-testid': 'privacy-erase-confirm' },
      t('privacy_erase_confirm', { n }));
    const cancel = h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'privacy-erase-cancel',
      onclick: () => { confirmBox.hidden = true; eraseButton.focus(); } }, t('cancel'));
    clear(confirmBox).append(h('p', { id: 'privacy-confirm-text' }, t('privacy_erase_warning', { n })),
      h('div', { class: 'form-actions' }, go, cancel));
    confirmBox.hidden = false;
    go.focus();
    go.addEventListener('click', async () => {
      go.disabled = true;
      const body = { [kind.value]: value.value.trim() };
      try {
        let erasure = await api('POST', '/api/project/privacy/erasures', body, { idempotencyKey: key });
        confirmBox.hidden = true;
        drawErasure(erasure);
        while (erasure.status !== 'done') {
          await new Promise((r) => setTimeout(r, 1000));
          erasure = await api('GET', `/api/project/privacy/erasures/${encodeURIComponent(erasure.id)}`);
          drawErasure(erasure);
        }
      } catch (e) { say(e.message || t('network_error')); go.disabled = false; }
    });
  });

  function drawErasure(e) {
    const done = e.status === 'done';
    clear(result).append(h('p', { class: done ? 'form-message ok' : 'muted', 'data-testid': 'privacy-erasure-status',
      'data-status': e.status }, done
      ? t('privacy_erased', { conversations: e.erased.conversations, messages: e.erased.messages, files: e.erased.files })
      : t('privacy_erasing', { n: e.conversations })));
    if (done && e.crm_leads.length) {
      result.append(h('p', null, t('privacy_crm_leads')),
        h('ul', { 'data-testid': 'privacy-crm-leads' }, ...e.crm_leads.map((l) => h('li', null,
          l.url ? safeLink(l.url, `#${l.lead_id}`) : `#${l.lead_id}`))));
    }
  }
}
