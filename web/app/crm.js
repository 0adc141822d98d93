// CRM settings (admins): which CRM gets the leads, its address and secret, the default
// responsible manager and the lead's source; "Test connection"; and the delivery log of every
// handoff with a retry for the failed ones. Both are sections of the settings page.
//
// Secrets are write-only: the API never returns them (a masked Bitrix24 URL, `secret_set`,
// `token_set`), and this page never puts one in the DOM after a save. API strings always go in
// as text nodes.
import { api, uuid } from './api.js';
import { h, clear, safeLink } from './dom.js';
import { t, formatDateTime, formatTime } from './i18n.js';

export const KINDS = ['none', 'bitrix24', 'webhook', 'amocrm'];
/** The fields of each kind; a secret one is a password input, kept when left empty. */
const KIND_FIELDS = {
  none: [],
  bitrix24: [{ name: 'webhook_url', secret: true, placeholder: 'https://example.bitrix24.ru/rest/1/…/' }],
  webhook: [{ name: 'url', placeholder: 'https://crm.example.com/parley-leads' }, { name: 'secret', secret: true }],
  amocrm: [{ name: 'base_url', placeholder: 'https://example.amocrm.ru' }, { name: 'token', secret: true }],
};
const COMMON_FIELDS = [
  { name: 'default_responsible', maxlength: 64 },
  { name: 'source_name', maxlength: 100 },
];

/** Whether the stored settings hold this kind's secret (so an empty input keeps it). */
function storedSecret(current, kind, name) {
  if (!current || current.kind !== kind) return false;
  if (name === 'webhook_url') return !!current.webhook_url;
  if (name === 'secret') return !!current.secret_set;
  if (name === 'token') return !!current.token_set;
  return false;
}

function formMessage(testid) {
  return h('p', { class: 'form-message', role: 'status', 'aria-live': 'polite', 'data-testid': testid });
}
function say(el, text, kind = 'error') {
  el.textContent = text || '';
  el.className = `form-message ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

// ---- settings --------------------------------------------------------------------------------
export async function crmSettingsSection(node) {
  let current = await api('GET', '/api/project/crm');
  let dirty = false;
  const controls = {};     // 'kind' | '<kind>:<field>' | common field -> {input, error, wrapper, stored}

  const currentLine = h('p', { class: 'crm-current', 'data-testid': 'crm-current' });
  const kindSelect = h('select', { id: 'crm-kind', 'data-testid': 'crm-kind' });
  for (const k of KINDS) kindSelect.append(h('option', { value: k }, t(`crm_kind_${k}`)));
  kindSelect.value = current.kind;
  const kindError = fieldError('crm-kind');
  kindSelect.setAttribute('aria-describedby', `crm-kind-hint ${kindError.id}`);
  controls.kind = { input: kindSelect, error: kindError };

  const groups = {};
  for (const kind of KINDS) {
    const group = h('fieldset', { class: 'crm-kind-fields', 'data-testid': `crm-fields-${kind}`, 'data-kind': kind },
      h('legend', null, t('crm_kind_fields', { kind: t(`crm_kind_${kind}`) })));
    if (kind === 'none') group.append(h('p', { class: 'muted' }, t('crm_none_hint')));
    for (const f of KIND_FIELDS[kind]) group.append(kindField(kind, f));
    groups[kind] = group;
  }
  const common = h('fieldset', { class: 'crm-kind-fields', 'data-testid': 'crm-fields-common' },
    h('legend', null, t('crm_lead_fields')));
  for (const f of COMMON_FIELDS) {
    const input = h('input', { type: 'text', id: `crm-${f.name}`, 'data-testid': `crm-${f.name}`, maxlength: String(f.maxlength),
      autocomplete: 'off', spellcheck: 'false' });
    common.append(wrap(f.name, f.name, input, t(`crm_hint_${f.name}`)));
  }

  const msg = formMessage('crm-message');
  const save = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'crm-save' }, t('save'));
  const test = h('button', { class: 'btn', type: 'button', 'data-testid': 'crm-test' }, t('crm_test'));
  const testResult = h('p', { class: 'form-message crm-test-result', role: 'status', 'aria-live': 'polite',
    'data-testid': 'crm-test-result' });
  const form = h('form', { class: 'card form-grid crm-form', novalidate: true, 'data-testid': 'crm-form',
    'aria-labelledby': 'crm-form-title', onsubmit: onSave, oninput: () => { dirty = true; } },
  h('h4', { id: 'crm-form-title' }, t('crm_connection')),
  h('div', { class: 'field' }, h('label', { for: 'crm-kind' }, t('crm_kind')), kindSelect,
    h('p', { class: 'field-hint', id: 'crm-kind-hint' }, t('crm_kind_hint')), kindError),
  ...Object.values(groups), common,
  h('div', { class: 'form-actions' }, save, test, h('span', { class: 'field-hint' }, t('crm_test_hint'))),
  msg, testResult);

  node.append(h('p', { class: 'muted' }, t('crm_intro')), currentLine, form,
    h('p', null, h('a', { href: '#/settings/crm_deliveries', 'data-testid': 'crm-deliveries-link' }, t('crm_open_log'))));

  kindSelect.addEventListener('change', () => { showKind(); clearErrors(); });
  fill();

  function kindField(kind, f) {
    const id = `crm-${kind}-${f.name}`;
    const input = h('input', { type: f.secret ? 'password' : 'url', id, 'data-testid': `crm-${f.name}`, inputmode: 'url',
      autocomplete: f.secret ? 'new-password' : 'off', spellcheck: 'false', autocapitalize: 'off', placeholder: f.placeholder || null });
    if (f.name === 'secret' || f.name === 'token') input.removeAttribute('inputmode');
    return wrap(`${kind}:${f.name}`, f.name, input, t(`crm_hint_${f.name}`), f.secret);
  }

  /** A labelled field with its hint, a "stored" note (secrets) and its own error line. */
  function wrap(key, name, input, hint, secret = false) {
    const id = input.id;
    const hintEl = h('p', { class: 'field-hint', id: `${id}-hint` }, hint);
    const stored = secret ? h('p', { class: 'field-hint crm-stored', id: `${id}-stored`, 'data-testid': `crm-${name}-stored`, hidden: true }) : null;
    const error = fieldError(id, `crm-${name}-error`);
    input.setAttribute('aria-describedby', [hintEl.id, stored && stored.id, error.id].filter(Boolean).join(' '));
    let control = input;
    if (secret) {
      const label = (shown) => t(shown ? 'crm_hide_named' : 'crm_show_named', { name: t(`crm_field_${name}`) });
      const reveal = h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'aria-controls': id,
        'data-testid': `crm-${name}-reveal`, 'aria-label': label(false), onclick: () => {
          const show = input.type === 'password';
          input.type = show ? 'text' : 'password';
          reveal.textContent = show ? t('crm_hide') : t('crm_show');
          reveal.setAttribute('aria-label', label(show));
        } }, t('crm_show'));
      control = h('div', { class: 'crm-secret' }, input, reveal);
    }
    const wrapper = h('div', { class: 'field' }, h('label', { for: id }, t(`crm_field_${name}`)), control, stored, hintEl, error);
    controls[key] = { input, error, wrapper, stored };
    return wrapper;
  }

  function fieldError(id, testid) {
    return h('p', { class: 'field-error', id: `${id}-error`, 'data-testid': testid || `${id}-error` });
  }

  /** The form from `current` (what the server has): secrets empty, their "stored" notes shown. */
  function fill() {
    kindSelect.value = current.kind;
    for (const kind of KINDS) {
      for (const f of KIND_FIELDS[kind]) {
        const c = controls[`${kind}:${f.name}`];
        if (f.secret) {
          c.input.value = '';
          const kept = storedSecret(current, kind, f.name);
          c.stored.hidden = !kept;
          clear(c.stored);
          if (kept) {
            if (f.name === 'webhook_url') c.stored.append(t('crm_stored_url'), ' ', h('code', null, current.webhook_url), ' — ', t('crm_leave_empty'));
            else c.stored.append(t('crm_stored_keep'));
          }
          c.input.placeholder = kept ? t('crm_stored_placeholder') : (f.placeholder || '');
        } else {
          c.input.value = current.kind === kind ? current[f.name] || '' : c.input.value;
        }
      }
    }
    for (const f of COMMON_FIELDS) controls[f.name].input.value = current[f.name] || '';
    drawCurrent();
    showKind();
    dirty = false;
  }

  function drawCurrent() {
    clear(currentLine).append(h('span', { class: `status ${current.kind === 'none' ? 'status-closed' : 'status-in_work'}` },
      current.kind === 'none' ? t('crm_not_connected') : t('crm_connected', { kind: t(`crm_kind_${current.kind}`) })));
    if (current.updated_at) currentLine.append(' ', h('span', { class: 'muted small' }, t('crm_updated', { when: formatDateTime(current.updated_at) })));
  }

  function showKind() {
    const kind = kindSelect.value;
    for (const [k, group] of Object.entries(groups)) group.hidden = k !== kind;
    common.hidden = kind === 'none';
  }

  function clearErrors() {
    for (const c of Object.values(controls)) {
      if (!c.error) continue;
      c.error.textContent = '';
      c.input.removeAttribute('aria-invalid');
    }
  }

  function body() {
    const kind = kindSelect.value;
    const out = { kind };
    for (const f of KIND_FIELDS[kind]) {
      const value = controls[`${kind}:${f.name}`].input.value.trim();
      if (f.secret && !value && storedSecret(current, kind, f.name)) continue;   // keep the stored one
      out[f.name] = value;
    }
    for (const f of COMMON_FIELDS) out[f.name] = controls[f.name].input.value.trim() || null;
    return out;
  }

  /** A 422 `<field>_invalid` (or `<field>_required`: a secret to send again with a changed
   *  address) goes next to its field; anything else to the form's message. */
  function showError(err) {
    const match = /^(.+)_(?:invalid|required)$/.exec(err.code || '');
    const kind = kindSelect.value;
    const c = match && (match[1] === 'kind' ? controls.kind : controls[`${kind}:${match[1]}`] || controls[match[1]]);
    if (err.status === 422 && c && c.error) {
      const what = err.code.endsWith('_required') ? 'crm_err_secret_again' : `crm_err_${match[1]}`;
      clear(c.error).append(t(what), ' ', h('span', { class: 'field-error-detail' }, err.message || ''));
      c.input.setAttribute('aria-invalid', 'true');
      say(msg, t('crm_check_field', { field: t(`crm_field_${match[1]}`) }));
      c.input.focus();
      return;
    }
    say(msg, err.message || t('network_error'));
  }

  async function onSave(e) {
    e.preventDefault();
    save.disabled = true; say(msg, ''); clearErrors();
    try {
      current = await api('PUT', '/api/project/crm', body(), { idempotencyKey: uuid() });
      fill();
      testResult.textContent = '';
      say(msg, t('saved'), 'ok');
    } catch (err) { showError(err); }
    save.disabled = false;
  }

  test.addEventListener('click', async () => {
    if (dirty) { say(testResult, t('crm_test_unsaved')); testResult.dataset.ok = 'false'; return; }
    test.disabled = true;
    say(testResult, t('crm_testing'), 'ok');
    testResult.setAttribute('aria-busy', 'true');
    try {
      const result = await api('POST', '/api/project/crm/test', {}, { idempotencyKey: uuid() });
      say(testResult, t(result.ok ? 'crm_test_ok' : 'crm_test_failed', { summary: result.summary }), result.ok ? 'ok' : 'error');
      testResult.dataset.ok = String(!!result.ok);
    } catch (err) {
      say(testResult, err.message || t('network_error'));
      testResult.dataset.ok = 'false';
    }
    testResult.setAttribute('aria-busy', 'false');
    test.disabled = false;
  });
}

// ---- the delivery log ------------------------------------------------------------------------
const POLL_MS = 2000;

export async function crmDeliveriesSection(node) {
  let deliveries = [];
  let timer = null;
  const refresh = h('button', { class: 'btn', type: 'button', 'data-testid': 'deliveries-refresh', onclick: () => reload() }, t('crm_refresh'));
  const state = h('p', { class: 'muted small', role: 'status', 'aria-live': 'polite', 'data-testid': 'deliveries-state' });
  const msg = formMessage('deliveries-message');
  const host = h('div', { class: 'crm-log' });
  /** The first load's failure is the section's (the settings page shows it); later ones are said here. */
  async function load() {
    deliveries = (await api('GET', '/api/project/crm/deliveries')).deliveries;
    draw();
    state.textContent = t('crm_log_updated', { n: deliveries.length, when: formatDateTime(new Date().toISOString()) });
    follow();
  }

  /** While some are on their way, look again now and then. */
  function follow() {
    clearTimeout(timer);
    if (deliveries.some((d) => d.status === 'pending')) timer = setTimeout(reload, POLL_MS);
  }

  async function reload() {
    if (!node.isConnected) return;   // the page was left: stop following
    refresh.disabled = true;
    try {
      await load();
      say(msg, '');
    } catch (err) {
      say(msg, err.message || t('network_error'));
      follow();
    }
    refresh.disabled = false;
  }

  function time(iso) {
    // Short (the time alone today), the full date and time on hover.
    return iso ? h('time', { datetime: iso, title: formatDateTime(iso) }, formatTime(iso)) : h('span', { class: 'muted' }, '—');
  }

  function draw() {
    if (!deliveries.length) {
      clear(host).append(h('p', { class: 'muted', 'data-testid': 'deliveries-empty' }, t('crm_log_empty')));
      return;
    }
    const cols = ['crm_col_status', 'crm_col_attempts', 'crm_col_created', 'crm_col_delivered', 'crm_col_lead',
      'crm_col_responsible', 'crm_col_error', 'crm_col_conversation'];
    const table = h('table', { class: 'table crm-log-table', 'data-testid': 'delivery-list' },
      h('caption', { class: 'visually-hidden' }, t('settings_crm_deliveries')),
      h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, t(c))))));
    const tbody = h('tbody');
    for (const d of deliveries) tbody.append(row(d));
    table.append(tbody);
    clear(host).append(h('div', { class: 'crm-log-scroll' }, table));
  }

  function row(d) {
    const lead = d.lead_url ? safeLink(d.lead_url, d.lead_id ? `#${d.lead_id}` : t('open'))
      : d.lead_id ? h('span', null, `#${d.lead_id}`) : h('span', { class: 'muted' }, '—');
    if (d.lead_url) lead.dataset.testid = 'delivery-lead';   // safeLink: http(s) only, new tab, rel=noopener noreferrer
    const delivered = d.status === 'pending' && d.next_attempt_at
      ? h('span', { class: 'muted' }, t('crm_next_attempt'), ' ', time(d.next_attempt_at)) : time(d.delivered_at);
    const error = d.last_error ? h('span', { class: 'crm-error-text' }, d.last_error) : h('span', { class: 'muted' }, '—');
    const errorCell = h('td', { 'data-testid': 'delivery-error' }, error);
    if (d.status === 'failed' && d.retryable !== null && d.retryable !== undefined) {
      errorCell.append(h('span', { class: 'muted small crm-retryable' }, d.retryable ? t('crm_temporary') : t('crm_final')));
    }
    // A failed one's Retry sits next to its status.
    const statusCell = h('td', null, h('div', { class: 'crm-status-cell' },
      h('span', { class: `status crm-status-${d.status}`, 'data-testid': 'delivery-status' }, t(`crm_status_${d.status}`))));
    if (d.status === 'failed') {
      const retry = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'delivery-retry',
        'aria-label': t('crm_retry_named', { when: formatDateTime(d.created_at) }), onclick: async () => {
          retry.disabled = true; say(msg, '');
          try {
            const updated = await api('POST', `/api/project/crm/deliveries/${encodeURIComponent(d.request_id)}/retry`, {},
              { idempotencyKey: uuid() });
            deliveries = deliveries.map((x) => (x.request_id === updated.request_id ? updated : x));
            draw();
            say(msg, t('crm_retry_queued'), 'ok');
            follow();
          } catch (err) { say(msg, err.message || t('network_error')); retry.disabled = false; }
        } }, t('crm_retry'));
      statusCell.firstChild.append(retry);
    }
    return h('tr', { 'data-testid': 'delivery-row', 'data-request-id': d.request_id, 'data-status': d.status },
      statusCell,
      h('td', { 'data-testid': 'delivery-attempts', class: 'num' }, String(d.attempts)),
      h('td', null, time(d.created_at)),
      h('td', null, delivered),
      h('td', null, lead),
      h('td', { 'data-testid': 'delivery-responsible' }, d.responsible && d.responsible.name
        ? d.responsible.name : h('span', { class: 'muted' }, '—')),
      errorCell,
      h('td', null, h('a', { href: `#/inbox/all/${encodeURIComponent(d.conversation_id)}`, 'data-testid': 'delivery-conversation' },
        t('crm_open_conversation'))));
  }

  await load();   // first: a refusal (not an admin) is all the page shows
  node.append(h('p', { class: 'muted' }, t('crm_log_intro')),
    h('div', { class: 'form-actions crm-log-bar' }, refresh, h('a', { href: '#/settings/crm' }, t('crm_back_to_settings')), state),
    msg, host);
}
