// Settings › Security (everyone; issue 23): my two-factor login - enrol by QR code, confirm
// with a code from the authenticator app, keep the ten recovery codes (shown once); switch
// it off with a code - and my sessions (device, address, last seen), each to end, or all
// others. The owner also requires two-factor login of everyone, resets an operator's (a
// lost phone) and sees and ends anyone's sessions. The enrolment alone is also the whole screen of a session that must enrol
// (app.js). API strings go in as text; the QR code is the server's SVG, shown as an image.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t, formatDateTime } from './i18n.js';
import { store } from './store.js';

export async function securitySection(node, { onEnabled } = {}) {
  const mine = h('div', { class: 'card form-grid two-factor', 'data-testid': 'two-factor' });
  node.append(mine);
  const title = () => h('h4', null, t('tf_title'));

  function codeInput(testid) {
    return h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '20', size: '12',
      class: 'mono', 'data-testid': testid, id: testid, spellcheck: 'false' });
  }

  async function draw() {
    const state = await api('GET', '/api/me/two-factor');
    clear(mine).append(title());
    if (!state.enabled) {
      mine.append(h('p', { 'data-testid': 'tf-state' }, t(state.required ? 'tf_required' : 'tf_off')),
        h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'tf-enrol',
          onclick: enrol }, t('tf_enrol'))));
      return;
    }
    mine.append(h('p', { 'data-testid': 'tf-state' }, t('tf_on', { n: state.recovery_codes_left })));
    if (state.required) return;
    const code = codeInput('tf-off-code');
    const message = h('p', { class: 'form-message', role: 'alert' });
    mine.append(h('form', { class: 'inline-form', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('DELETE', '/api/me/two-factor', { code: code.value.trim() }); await draw(); } catch (err) { message.textContent = err.message; }
    } }, h('label', { for: 'tf-off-code' }, t('tf_off_label')), code,
    h('button', { class: 'btn', type: 'submit', 'data-testid': 'tf-off' }, t('tf_turn_off')), message));
  }

  async function enrol() {
    const started = await api('POST', '/api/me/two-factor/enrol', {});
    const code = codeInput('tf-code');
    const message = h('p', { class: 'form-message error', role: 'alert', 'data-testid': 'tf-message' });
    const qr = h('img', { src: `data:image/svg+xml;base64,${btoa(started.qr_svg)}`, alt: t('tf_qr_alt'), width: '200',
      height: '200', class: 'tf-qr', 'data-testid': 'tf-qr' });
    clear(mine).append(title(), h('p', null, t('tf_scan')), qr,
      h('p', { class: 'muted small' }, t('tf_or_key'), ' ', h('code', { 'data-testid': 'tf-secret' }, started.secret)),
      h('form', { class: 'inline-form', onsubmit: async (e) => {
        e.preventDefault();
        try {
          const done = await api('POST', '/api/me/two-factor/confirm', { code: code.value.trim() });
          showRecoveryCodes(done.recovery_codes);
        } catch (err) { message.textContent = err.message; code.select(); }
      } }, h('label', { for: 'tf-code' }, t('tf_code_label')), code,
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'tf-confirm' }, t('tf_confirm'))), message);
    code.focus();
  }

  function showRecoveryCodes(codes) {
    clear(mine).append(title(), h('p', { role: 'status' }, t('tf_enabled')), h('p', null, t('tf_codes_intro')),
      h('ol', { class: 'recovery-codes mono', 'data-testid': 'tf-recovery-codes' }, ...codes.map((c) => h('li', null, c))),
      h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'tf-done',
        onclick: async () => { if (onEnabled) await onEnabled(); else await draw(); } }, t('tf_done'))));
  }

  await draw();
  if (onEnabled) return;   // the set-up screen of a session that must enrol: nothing else yet
  node.append(await sessionsBox());
  if (store.me && store.me.is_owner) node.append(await ownerBox());
}

/** "Chrome on Linux" from a User-Agent (the whole string stays in the title). */
export function deviceOf(ua) {
  if (!ua) return t('session_unknown_device');
  const browser = [[/Edg\//, 'Edge'], [/OPR\//, 'Opera'], [/Firefox\//, 'Firefox'], [/(Headless)?Chrom(e|ium)\//, 'Chrome'],
    [/Safari\//, 'Safari']].find(([re]) => re.test(ua));
  const os = [[/iPhone|iPad|iPod/, 'iOS'], [/Android/, 'Android'], [/Windows/, 'Windows'], [/Mac OS X|Macintosh/, 'macOS'],
    [/CrOS/, 'ChromeOS'], [/Linux/, 'Linux']].find(([re]) => re.test(ua));
  if (!browser && !os) return ua.slice(0, 60);
  return browser && os ? t('session_device', { browser: browser[1], os: os[1] }) : (browser || os)[1];
}

/** A list of sessions, each with "End"; `base` is /api/me or /api/operators/<id>. */
async function sessionList(base, { onChange } = {}) {
  const list = h('ul', { class: 'plain-list sessions', 'data-testid': 'sessions' });
  const { sessions } = await api('GET', `${base}/sessions`);
  for (const s of sessions) {
    const end = s.current ? h('span', { class: 'chip chip-ok', 'data-testid': 'session-current' }, t('session_this'))
      : h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'session-end', onclick: async (e) => {
        e.currentTarget.disabled = true;
        try { await api('DELETE', `${base}/sessions/${s.id}`); } catch { /* gone already: redrawn below */ }
        if (onChange) await onChange();
      } }, t('session_end'));
    list.append(h('li', { 'data-testid': 'session' },
      h('div', null, h('strong', { title: s.user_agent || '' }, deviceOf(s.user_agent))),
      h('div', { class: 'muted small' }, t('session_line', { address: s.address || '?', opened: formatDateTime(s.created_at),
        seen: formatDateTime(s.last_used_at) })), end));
  }
  return list;
}

async function sessionsBox() {
  const box = h('div', { class: 'card form-grid', 'data-testid': 'my-sessions' });
  const status = h('p', { class: 'form-message', role: 'status', 'data-testid': 'sessions-status' });
  async function draw() {
    const list = await sessionList('/api/me', { onChange: draw });
    const others = list.querySelectorAll('[data-testid=session-end]').length;
    clear(box).append(h('h4', null, t('sessions_title')), list, status);
    if (others) {
      box.append(h('div', { class: 'form-actions' }, h('button', { class: 'btn', type: 'button', 'data-testid': 'sessions-end-others',
        onclick: async () => {
          const { ended } = await api('POST', '/api/me/sessions/end-others', {});
          status.textContent = t('sessions_ended', { n: ended });
          await draw();
        } }, t('sessions_end_others'))));
    }
  }
  await draw();
  return box;
}

/** The owner's part: the project's requirement and the reset of another operator's second factor. */
async function ownerBox() {
  const box = h('div', { class: 'card form-grid', 'data-testid': 'tf-owner' }, h('h4', null, t('tf_owner_title')));
  const status = h('p', { class: 'form-message', role: 'status', 'data-testid': 'tf-owner-status' });
  const required = h('input', { type: 'checkbox', id: 'tf-required', 'data-testid': 'tf-required' });
  required.checked = (await api('GET', '/api/project/two-factor')).required;
  required.addEventListener('change', async () => {
    try {
      await api('PUT', '/api/project/two-factor', { required: required.checked });
      status.textContent = t(required.checked ? 'tf_required_on' : 'tf_required_off');
    } catch (err) { required.checked = !required.checked; status.textContent = err.message; }
  });
  const list = h('ul', { class: 'plain-list', 'data-testid': 'tf-operators' });
  for (const o of (await api('GET', '/api/operators')).operators || []) {
    if (o.id === store.me.id || o.removed) continue;
    const theirs = h('div', { class: 'their-sessions' });
    const showSessions = async () => { clear(theirs).append(await sessionList(`/api/operators/${o.id}`, { onChange: showSessions })); };
    list.append(h('li', { 'data-testid': 'tf-operator' }, h('span', null, o.name, ' '), h('button', { class: 'btn btn-small', type: 'button',
      'data-testid': 'tf-reset', onclick: async (e) => {
        if (!window.confirm(t('tf_reset_confirm', { name: o.name }))) return;
        e.currentTarget.disabled = true;
        try { await api('POST', `/api/operators/${o.id}/two-factor/reset`, {}); status.textContent = t('tf_reset_done', { name: o.name }); } catch (err) { status.textContent = err.message; }
      } }, t('tf_reset')), ' ', h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'their-sessions',
      onclick: showSessions }, t('sessions_show')), theirs));
  }
  box.append(h('label', { class: 'checkbox' }, required, ' ', t('tf_require_label')), status,
    h('p', { class: 'muted small' }, t('tf_reset_help')), list);
  return box;
}
