// Transcripts by email (admins): the SMTP server the project sends from (the password is
// write-only: left empty, the stored one is kept), "Send a test email", whether a closed
// conversation's transcript goes by itself to the email the visitor left, and the log of
// the last 50 transcripts (GET|PUT /api/project/email, POST .../test, GET .../deliveries).
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t, formatDateTime } from './i18n.js';

export async function emailSection(node) {
  const current = await api('GET', '/api/project/email');
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const input = (id, props) => h('input', { id, type: 'text', 'data-testid': id, ...props });
  const host = input('email-host', { value: current.host || '', placeholder: 'smtp.example.com' });
  const port = input('email-port', { type: 'number', min: 1, max: 65535, value: String(current.port || 587) });
  const security = h('select', { id: 'email-security', 'data-testid': 'email-security' },
    ...['starttls', 'tls', 'none'].map((s) => h('option', { value: s, selected: (current.security || 'starttls') === s }, t(`email_security_${s}`))));
  const user = input('email-user', { value: current.user || '', autocomplete: 'off' });
  const password = input('email-password', { type: 'password', autocomplete: 'new-password',
    placeholder: current.password_set ? t('email_password_kept') : '' });
  const fromAddress = input('email-from-address', { type: 'email', value: current.from_address || '' });
  const fromName = input('email-from-name', { value: current.from_name || '' });
  const language = h('select', { id: 'email-language', 'data-testid': 'email-language' },
    ...['en', 'ru'].map((l) => h('option', { value: l, selected: (current.language || 'en') === l }, l === 'en' ? 'English' : 'Русский')));
  const onClose = input('email-on-close', { type: 'checkbox', checked: !!current.on_close });
  const message = h('p', { class: 'form-message', 'data-testid': 'email-message' });
  const say = (text, ok) => { message.className = `form-message ${ok ? 'ok' : 'error'}`; message.setAttribute('role', ok ? 'status' : 'alert'); message.textContent = text; };

  const form = h('form', { class: 'card', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    try {
      const saved = await api('PUT', '/api/project/email', { host: host.value.trim(), port: Number(port.value), security: security.value,
        user: user.value.trim() || null, password: password.value || null, from_address: fromAddress.value.trim(),
        from_name: fromName.value.trim(), language: language.value, on_close: onClose.checked });
      password.value = '';
      password.placeholder = saved.password_set ? t('email_password_kept') : '';
      say(t('email_saved'), true);
    } catch (err) { say(err.message, false); }
  } },
  h('p', { class: 'hint' }, t('email_help')),
  field('email-host', t('email_host'), host), field('email-port', t('email_port'), port),
  field('email-security', t('email_security'), security), field('email-user', t('email_user'), user),
  field('email-password', t('email_password'), password), field('email-from-address', t('email_from_address'), fromAddress),
  field('email-from-name', t('email_from_name'), fromName), field('email-language', t('email_language'), language),
  h('label', { class: 'checkbox' }, onClose, ' ', t('email_on_close')),
  message, h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'email-save' }, t('save')));

  const testTo = input('email-test-to', { type: 'email', placeholder: 'you@example.com' });
  const testResult = h('p', { class: 'form-message', role: 'status', 'data-testid': 'email-test-result' });
  const test = h('form', { class: 'card row-form', onsubmit: async (e) => {
    e.preventDefault();
    testResult.textContent = t('loading');
    try {
      const answer = await api('POST', '/api/project/email/test', { to: testTo.value.trim() });
      testResult.textContent = answer.sent ? t('email_test_sent') : t('email_test_failed', { error: answer.error });
    } catch (err) { testResult.textContent = err.message; }
  } }, field('email-test-to', t('email_test_to'), testTo),
  h('button', { class: 'btn', type: 'submit', 'data-testid': 'email-test' }, t('email_test')), testResult);

  const log = h('tbody');
  const table = h('table', { class: 'report-table', 'data-testid': 'email-log' }, h('thead', null, h('tr', null,
    ...['email_log_when', 'email_log_reason', 'email_log_status', 'email_log_attempts', 'email_log_error'].map((k) => h('th', { scope: 'col' }, t(k))))), log);
  async function reload() {
    const { deliveries } = await api('GET', '/api/project/email/deliveries');
    clear(log).append(...deliveries.map((d) => h('tr', { 'data-testid': 'email-log-row', 'data-status': d.status },
      h('td', null, formatDateTime(d.created_at)), h('td', null, t(`email_reason_${d.reason}`)),
      h('td', null, t(`email_status_${d.status}`)), h('td', null, String(d.attempts)), h('td', null, d.last_error || ''))));
    if (!deliveries.length) log.append(h('tr', null, h('td', { colspan: 5, class: 'muted' }, t('email_log_empty'))));
  }
  await reload();
  node.append(form, h('h3', null, t('email_test')), test, h('h3', null, t('email_log')),
    h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'email-log-refresh', onclick: () => reload() }, t('crm_refresh')), table);
}
