// Admin settings: chat on/off + snippet, operators, quick-reply templates, widget texts with a
// live preview, and the sites where the widget may run. Owner-only controls are hidden for others
// (and the server refuses them anyway).
import { api, upload, uuid } from './api.js';
import { h, clear, avatar, icon, append } from './dom.js';
import { t } from './i18n.js';
import { store } from './store.js';
import { fill, variables } from './template_vars.js';

export const SECTIONS = ['chat', 'operators', 'templates', 'widget', 'sites', 'triggers', 'hours', 'crm', 'crm_deliveries', 'email', 'ratings', 'assignment', 'identity',
  'privacy', 'notifications', 'security'];
// Every operator's own: notifications (notification_settings.js), two-factor login (security.js).
export const EVERYONE_SECTIONS = ['notifications', 'security'];
// The CRM sections (crm.js) and working hours (hours.js) are listed for admins only; anyone
// opening their URL gets the API's answer.
export const CRM_SECTIONS = ['crm', 'crm_deliveries'];
export const ADMIN_SECTIONS = [...CRM_SECTIONS, 'email', 'triggers', 'hours', 'ratings', 'assignment', 'identity', 'privacy'];

export function createSettings(ctx) {
  const me = store.me;
  let section = SECTIONS.includes(ctx.route.section) ? ctx.route.section : 'operators';
  const nav = h('nav', { class: 'settings-nav', 'aria-label': t('settings') });
  const panel = h('div', { class: 'settings-panel' });
  const el = h('section', { class: 'settings', 'aria-labelledby': 'settings-title' },
    h('div', { class: 'settings-side' }, h('h2', { id: 'settings-title' }, t('settings')), nav), panel);

  function drawNav() {
    clear(nav);
    const listed = SECTIONS.filter((s) => (EVERYONE_SECTIONS.includes(s) ? true
      : ADMIN_SECTIONS.includes(s) ? me.is_admin : me.is_admin || me.is_owner));
    for (const s of listed) {
      nav.append(h('a', { href: `#/settings/${s}`, class: `settings-nav-item${s === section ? ' active' : ''}`,
        'data-testid': `settings-nav-${s}`, 'aria-current': s === section ? 'page' : null }, t(`settings_${s}`)));
    }
  }

  async function show(s) {
    section = SECTIONS.includes(s) ? s : 'operators';
    drawNav();
    const builders = { chat: chatSection, operators: operatorsSection, templates: templatesSection, widget: widgetSection, sites: sitesSection,
      hours: async (n) => (await import('./hours.js')).hoursSection(n),
      triggers: async (n) => (await import('./triggers.js')).triggersSection(n),
      email: async (n) => (await import('./email.js')).emailSection(n),
      crm: async (n) => (await import('./crm.js')).crmSettingsSection(n),
      crm_deliveries: async (n) => (await import('./crm.js')).crmDeliveriesSection(n),
      ratings: async (n) => (await import('./ratings.js')).ratingsSection(n),
      assignment: async (n) => (await import('./assignment.js')).assignmentSection(n),
      identity: async (n) => (await import('./identity.js')).identitySection(n),
      privacy: async (n) => (await import('./privacy.js')).privacySection(n),
      notifications: async (n) => (await import('./notification_settings.js')).notificationsSection(n),
      security: async (n) => (await import('./security.js')).securitySection(n) };
    const node = h('div', { class: 'settings-section', 'data-testid': `settings-${section}`, 'aria-busy': 'true' },
      h('h3', { class: 'section-title', tabindex: '-1' }, t(`settings_${section}`)));
    clear(panel).append(node);
    try {
      await builders[section](node);
    } catch (e) {
      node.append(h('p', { class: 'error', role: 'alert' }, e.message || t('network_error')));
    }
    node.setAttribute('aria-busy', 'false');
  }

  show(section);
  return { el, show, get section() { return section; } };
}

// ---- small form helpers ---------------------------------------------------------------------
let fieldSeq = 0;
function field(label, control, { hint, testid } = {}) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  if (testid) control.dataset.testid = testid;
  const hintEl = hint ? h('p', { class: 'field-hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}
function checkbox(label, input, testid) {
  input.type = 'checkbox';
  if (testid) input.dataset.testid = testid;
  return h('label', { class: 'check' }, input, h('span', null, label));
}
function message(kind = 'error') {
  return h('p', { class: `form-message ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'aria-live': 'polite' });
}
function say(el, text, kind = 'error') {
  el.textContent = text || '';
  el.className = `form-message ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

// ---- chat -------------------------------------------------------------------------------------
async function chatSection(node) {
  const me = store.me;
  const project = await api('GET', '/api/project');
  const state = h('p', { class: 'chat-state', 'data-testid': 'chat-state' });
  const msg = message();
  const drawState = (p) => {
    clear(state).append(h('span', { class: `status ${p.chat_enabled ? 'status-in_work' : 'status-closed'}` },
      p.chat_enabled ? t('chat_enabled') : t('chat_disabled')));
  };
  drawState(project);
  node.append(state);
  if (me.is_owner) {
    const toggle = h('button', { class: 'btn', type: 'button', 'data-testid': 'chat-toggle' });
    const label = (p) => { toggle.textContent = p.chat_enabled ? t('disable_chat') : t('enable_chat'); toggle.classList.toggle('btn-primary', !p.chat_enabled); };
    let current = project;
    label(current);
    toggle.addEventListener('click', async () => {
      toggle.disabled = true; say(msg, '');
      try {
        current = await api('POST', `/api/project/chat/${current.chat_enabled ? 'disable' : 'enable'}`, {}, { idempotencyKey: uuid() });
        drawState(current); label(current);
        say(msg, current.chat_enabled ? t('chat_now_enabled') : t('chat_now_disabled'), 'ok');
      } catch (e) { say(msg, e.message); }
      toggle.disabled = false;
    });
    node.append(h('p', { class: 'muted' }, t('chat_toggle_hint')), toggle, msg);
  } else {
    node.append(h('p', { class: 'muted' }, t('chat_owner_only')));
  }
  const snippet = `<script async src="${location.origin}/widget.js" data-project="${project.id}"></script>`;
  const code = h('textarea', { class: 'snippet', readonly: true, rows: '2', 'data-testid': 'snippet', spellcheck: 'false' });
  code.value = snippet;
  const copied = message('ok');
  const copy = h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'copy-snippet', onclick: async () => {
    try { await navigator.clipboard.writeText(snippet); }
    catch { code.focus(); code.select(); document.execCommand('copy'); }
    say(copied, t('copied'), 'ok');
  } }, t('copy'));
  node.append(h('div', { class: 'snippet-block' }, field(t('snippet_title'), code, { hint: t('snippet_hint') }), copy, copied));
}

// ---- operators ----------------------------------------------------------------------------------
async function operatorsSection(node) {
  const me = store.me;
  const list = h('div', { class: 'op-list' });
  const formHost = h('div', { class: 'op-form-host' });
  node.append(list, formHost);
  let operators = [];

  const canManage = (o) => o.id === me.id || (me.is_owner ? !o.is_owner : !o.is_admin);

  async function reload() {
    operators = (await api('GET', '/api/operators')).operators;
    drawList();
  }

  function roleOf(o) { return o.is_owner ? t('role_owner') : o.is_admin ? t('role_admin') : t('role_operator'); }

  function drawList() {
    const table = h('table', { class: 'table', 'data-testid': 'operator-list' },
      h('caption', { class: 'visually-hidden' }, t('settings_operators')),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('name')), h('th', { scope: 'col' }, t('email')),
        h('th', { scope: 'col' }, t('role')), h('th', { scope: 'col' }, t('state')), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, t('actions'))))));
    const tbody = h('tbody');
    for (const o of operators) {
      const acts = h('div', { class: 'row-actions' });
      if (canManage(o)) {
        acts.append(h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'operator-edit',
          'aria-label': t('edit_named', { name: o.name }), onclick: () => drawForm(o) }, t('edit')));
        if (!o.is_owner && o.id !== me.id) {
          acts.append(h('button', { class: 'btn btn-small', type: 'button',
            'data-testid': o.active ? 'operator-deactivate' : 'operator-reactivate',
            'aria-label': `${o.active ? t('deactivate') : t('reactivate')}: ${o.name}`,
            onclick: (e) => act(e.currentTarget, 'POST', `/api/operators/${o.id}/${o.active ? 'deactivate' : 'reactivate'}`) },
          o.active ? t('deactivate') : t('reactivate')));
          acts.append(h('button', { class: 'btn btn-small btn-danger', type: 'button', 'data-testid': 'operator-remove',
            'aria-label': t('remove_named', { name: o.name }), onclick: (e) => {
              if (confirm(t('confirm_remove', { name: o.name }))) act(e.currentTarget, 'DELETE', `/api/operators/${o.id}`);
            } }, t('remove')));
        }
      }
      tbody.append(h('tr', { 'data-testid': 'operator-row', 'data-operator-id': o.id, class: o.active ? '' : 'inactive' },
        h('td', null, h('span', { class: 'op-name' }, avatar(o.name, o.avatar_url, 'sm'), h('span', null, o.name))),
        h('td', null, o.email || ''), h('td', null, roleOf(o)),
        h('td', null, h('span', { class: `status ${o.active ? 'status-in_work' : 'status-closed'}` }, o.active ? t('active') : t('inactive'))),
        h('td', null, acts)));
    }
    table.append(tbody);
    clear(list).append(table, listMsg);
  }
  const listMsg = message();

  async function act(button, method, path) {
    button.disabled = true; say(listMsg, '');
    try { await api(method, path, undefined, { idempotencyKey: method === 'DELETE' ? uuid() : undefined }); await reload(); }
    catch (e) { say(listMsg, e.message); button.disabled = false; }
  }

  /** The add form (no operator) or the edit form of one operator. One at a time on the page. */
  function drawForm(op) {
    let editing = !!op;
    const prefix = editing ? 'operator-edit' : 'operator-add';
    const name = h('input', { type: 'text', required: true, maxlength: '80', autocomplete: 'off', value: op?.name || '' });
    const email = h('input', { type: 'email', required: true, autocomplete: 'off', value: op?.email || '' });
    const password = h('input', { type: 'password', minlength: '10', autocomplete: 'new-password', required: !editing });
    // Changing one's own password needs the current one (an admin resetting someone else's does not).
    const ownAccount = editing && op.id === me.id;
    const currentPassword = h('input', { type: 'password', autocomplete: 'current-password' });
    const admin = h('input', { checked: !!op?.is_admin });
    const fileInput = h('input', { type: 'file', accept: 'image/png,image/jpeg', 'data-testid': 'avatar-input' });
    const preview = h('div', { class: 'avatar-preview', 'data-testid': 'avatar-preview' },
      op?.avatar_url ? h('img', { src: op.avatar_url, alt: t('current_avatar') }) : h('span', { class: 'muted' }, t('no_avatar')));
    const avatarError = h('p', { class: 'form-message error avatar-error', 'data-testid': 'avatar-error', role: 'alert', 'aria-live': 'assertive' });
    const avatarOk = message('ok');
    const msg = message();
    let file = null, objectUrl = null;

    fileInput.addEventListener('change', async () => {
      file = fileInput.files[0] || null;
      avatarError.textContent = ''; avatarOk.textContent = '';
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = file ? URL.createObjectURL(file) : null;
      clear(preview).append(objectUrl ? h('img', { src: objectUrl, alt: t('avatar_preview') }) : h('span', { class: 'muted' }, t('no_avatar')));
      if (file && editing && await sendAvatar(op.id)) await reload().catch(() => {});
    });

    async function sendAvatar(operatorId) {
      if (!file) return true;
      avatarError.textContent = '';
      say(avatarOk, t('uploading_short'), 'ok');
      try {
        await upload(`/api/operators/${operatorId}/avatar`, file, { method: 'PUT' });
        say(avatarOk, t('avatar_saved'), 'ok');
        file = null;
        return true;
      } catch (e) {
        avatarOk.textContent = '';
        avatarError.textContent = e.message || t('upload_failed');
        return false;
      }
    }

    const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': `${prefix}-submit` }, editing ? t('save') : t('add_operator'));
    const form = h('form', { class: 'card form-grid', 'data-testid': `${prefix}-form`, 'aria-labelledby': `${prefix}-title`,
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true; say(msg, '');
        try {
          let saved;
          if (editing) {
            const patch = {};
            if (name.value.trim() !== op.name) patch.name = name.value.trim();
            if (email.value.trim() !== (op.email || '')) patch.email = email.value.trim();
            if (password.value) patch.password = password.value;
            if (password.value && ownAccount) patch.current_password = currentPassword.value;
            if (me.is_owner && !op.is_owner && admin.checked !== !!op.is_admin) patch.is_admin = admin.checked;
            saved = Object.keys(patch).length ? await api('PATCH', `/api/operators/${op.id}`, patch, { idempotencyKey: uuid() }) : op;
          } else {
            const body = { name: name.value.trim(), email: email.value.trim(), password: password.value };
            if (me.is_owner) body.is_admin = admin.checked;
            saved = await api('POST', '/api/operators', body, { idempotencyKey: uuid() });
          }
          const avatarOkNow = await sendAvatar(saved.id);
          await reload();
          if (!avatarOkNow) {
            // Keep the form open on the (now existing) operator so another image can be chosen.
            if (!editing) { op = saved; switchToEdit(saved); }
            say(msg, editing ? t('saved_avatar_refused') : t('added_avatar_refused'));
          } else if (editing) {
            say(msg, t('saved'), 'ok');
            password.value = ''; currentPassword.value = '';
            op = operators.find((o) => o.id === op.id) || saved;
          } else {
            const fresh = drawForm(null);
            say(fresh, t('operator_added', { name: saved.name }), 'ok');
          }
        } catch (err) { say(msg, err.message); }
        submit.disabled = false;
      } });

    function switchToEdit(saved) {
      // re-label the open form as editing the operator just created, keeping the avatar error in view
      form.querySelector('h4').textContent = t('edit_named', { name: saved.name });
      password.required = false; password.value = '';
      submit.textContent = t('save');
      editing = true;
    }

    const showAdmin = me.is_owner && !(op && op.is_owner);
    // Through h()'s child rules: the native append would write a skipped field as "null".
    append(form,
      h('h4', { id: `${prefix}-title` }, editing ? t('edit_named', { name: op.name }) : t('add_operator')),
      field(t('display_name'), name, { testid: `${prefix}-name`, hint: t('display_name_hint') }),
      field(t('email'), email, { testid: `${prefix}-email`, hint: t('email_login_hint') }),
      field(editing ? t('new_password') : t('password'), password, { testid: `${prefix}-password`, hint: editing ? t('new_password_hint') : t('password_hint') }),
      ownAccount ? field(t('current_password'), currentPassword, { testid: `${prefix}-current-password`, hint: t('current_password_hint') }) : null,
      showAdmin ? checkbox(t('is_admin'), admin, `${prefix}-admin`) : null,
      h('div', { class: 'field avatar-field' },
        h('label', { for: `${prefix}-avatar` }, t('avatar')),
        h('div', { class: 'avatar-row' }, preview, h('div', null, fileInput, h('p', { class: 'field-hint' }, t('avatar_hint')))),
        avatarError, avatarOk),
      h('div', { class: 'form-actions' }, submit,
        editing ? h('button', { class: 'btn btn-ghost', type: 'button', onclick: () => drawForm(null) }, t('cancel')) : null),
      msg);
    fileInput.id = `${prefix}-avatar`;
    clear(formHost).append(form);
    if (editing) name.focus();
    return msg;
  }

  await reload();
  drawForm(null);
}

// ---- templates ----------------------------------------------------------------------------------
async function templatesSection(node) {
  let projectName = '';
  try { projectName = (await api('GET', '/api/project')).name; } catch { /* the preview names no project then */ }
  const search = h('input', { type: 'search', placeholder: t('search_templates'), 'data-testid': 'templates-search' });
  const list = h('ul', { class: 'tpl-admin-list', 'data-testid': 'template-list-admin' });
  const listMsg = message();
  const formHost = h('div');
  node.append(field(t('search_templates'), search), listMsg, list, formHost);
  let timer = null;

  async function reload() {
    const q = search.value.trim();
    const { templates } = await api('GET', `/api/templates${q ? `?q=${encodeURIComponent(q)}` : ''}`);
    clear(list);
    if (!templates.length) list.append(h('li', { class: 'muted' }, q ? t('no_templates') : t('no_templates_yet')));
    for (const tpl of templates) {
      list.append(h('li', { class: 'tpl-item', 'data-testid': 'template-item' },
        h('div', { class: 'tpl-body' }, h('strong', null, tpl.title), h('p', { class: 'tpl-text' }, tpl.text)),
        h('div', { class: 'row-actions' },
          h('button', { class: 'btn btn-small', type: 'button', 'aria-label': t('edit_named', { name: tpl.title }), onclick: () => drawForm(tpl) }, t('edit')),
          h('button', { class: 'btn btn-small btn-danger', type: 'button', 'aria-label': t('remove_named', { name: tpl.title }),
            onclick: async (e) => {
              if (!confirm(t('confirm_delete_template', { name: tpl.title }))) return;
              e.currentTarget.disabled = true;
              try { await api('DELETE', `/api/templates/${tpl.id}`); await reload(); } catch (err) { say(listMsg, err.message); }
            } }, t('delete')))));
    }
  }

  function drawForm(tpl) {
    const title = h('input', { type: 'text', required: true, maxlength: '100', value: tpl?.title || '' });
    const text = h('textarea', { required: true, maxlength: '2000', rows: '4' });
    text.value = tpl?.text || '';
    const msg = message();
    // What the reply will look like, with a sample visitor: custom params show by name,
    // as the operator will be asked for them when the visitor did not send them.
    const previewText = h('p', { class: 'template-preview', 'data-testid': 'template-preview' });
    const preview = h('div', { class: 'field' }, h('p', { class: 'field-label' }, t('template_preview')), previewText);
    const sample = { visitor: { name: t('template_sample_visitor') }, operator: { name: store.me.name },
      project: { name: projectName }, params: {} };
    const drawPreview = () => {
      for (const name of variables(text.value)) {
        if (name.startsWith('params.')) sample.params[name.slice(7)] = `‹${name.slice(7)}›`;
      }
      previewText.textContent = fill(text.value, sample).text;
    };
    text.addEventListener('input', drawPreview);
    drawPreview();
    const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'template-save' }, tpl ? t('save') : t('add_template'));
    const form = h('form', { class: 'card form-grid', 'aria-labelledby': 'tpl-form-title', onsubmit: async (e) => {
      e.preventDefault(); submit.disabled = true; say(msg, '');
      try {
        const body = { title: title.value.trim(), text: text.value.trim() };
        if (tpl) await api('PATCH', `/api/templates/${tpl.id}`, body, { idempotencyKey: uuid() });
        else await api('POST', '/api/templates', body, { idempotencyKey: uuid() });
        await reload();
        drawForm(null);
        say(formHost.querySelector('.form-message'), tpl ? t('saved') : t('template_added'), 'ok');
      } catch (err) { say(msg, err.message); submit.disabled = false; }
    } },
    h('h4', { id: 'tpl-form-title' }, tpl ? t('edit_named', { name: tpl.title }) : t('add_template')),
    field(t('template_title'), title, { testid: 'template-title' }),
    field(t('template_text'), text, { testid: 'template-text', hint: t('template_variables_hint') }),
    preview,
    h('div', { class: 'form-actions' }, submit, tpl ? h('button', { class: 'btn btn-ghost', type: 'button', onclick: () => drawForm(null) }, t('cancel')) : null),
    msg);
    clear(formHost).append(form);
    if (tpl) title.focus();
  }

  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => reload().catch((e) => say(listMsg, e.message)), 200); });
  await reload();
  drawForm(null);
}

// ---- widget texts with a live preview ------------------------------------------------------------
const TEXT_GROUPS = [
  ['group_header', ['launcher_label', 'window_title', 'online_subtitle', 'offline_subtitle', 'close_label']],
  ['group_conversation', ['greeting', 'input_placeholder', 'send_label', 'attach_label', 'status_sent', 'status_delivered',
    'status_read', 'typing', 'waiting_for_operator', 'waiting_while_closed', 'waiting_unanswered', 'operator_joined', 'chat_closed', 'new_conversation_label']],
  ['group_rating', ['rating_prompt', 'rating_comment_placeholder', 'rating_submit_label', 'rating_thanks']],
  ['group_notices', ['file_too_large', 'file_type_not_allowed', 'send_failed_retrying', 'reconnecting', 'reconnected', 'chat_unavailable']],
  ['group_contacts', ['contact_open_label', 'contact_form_title', 'name_label', 'phone_label', 'email_label', 'contact_submit_label',
    'contact_cancel_label', 'contact_thanks', 'contact_invalid_phone', 'contact_invalid_email', 'privacy_note']],
];

async function widgetSection(node) {
  const project = await api('GET', '/api/project');
  const config = await api('GET', `/api/widget/config?project=${encodeURIComponent(project.id)}`);
  // The standard texts of both languages and their limits, from the registry that owns them.
  const standard = await api('GET', '/api/widget/texts');
  const DEFAULT_TEXTS = standard.defaults, TEXT_LIMITS = standard.limits, MULTILINE_KEYS = new Set(standard.multiline);
  let language = config.language;
  const inputs = {};
  const language_ = h('select', { 'data-testid': 'widget-language' },
    h('option', { value: 'ru', selected: language === 'ru' }, 'Русский'),
    h('option', { value: 'en', selected: language === 'en' }, 'English'));
  const msg = message();
  const preview = buildPreview();
  const form = h('form', { class: 'widget-form', onsubmit: save },
    field(t('widget_language'), language_, { hint: t('widget_language_hint') }));
  for (const [group, keys] of TEXT_GROUPS) {
    const fs = h('fieldset', null, h('legend', null, t(group)));
    for (const key of keys) {
      const multi = MULTILINE_KEYS.has(key);
      const control = multi ? h('textarea', { rows: '3' }) : h('input', { type: 'text' });
      control.maxLength = TEXT_LIMITS[key];
      control.value = config.texts[key] ?? DEFAULT_TEXTS[language][key];
      control.dataset.key = key;
      control.dataset.testid = `widget-text-${key}`;
      control.addEventListener('input', () => { markChanged(key); drawPreview(); });
      const reset = h('button', { class: 'btn btn-ghost btn-small', type: 'button', 'aria-label': t('reset_named', { name: key }),
        onclick: () => { control.value = DEFAULT_TEXTS[language][key]; markChanged(key); drawPreview(); } }, t('reset'));
      const wrapper = field(key, control, { hint: t('text_hint', { limit: TEXT_LIMITS[key] }) });
      wrapper.querySelector('label').textContent = t(`text_${key}`) === `text_${key}` ? key : t(`text_${key}`);
      wrapper.append(reset);
      inputs[key] = { control, wrapper };
      markChanged(key);
      fs.append(wrapper);
    }
    form.append(fs);
  }
  const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'widget-save' }, t('save'));
  form.append(h('div', { class: 'form-actions sticky-actions' }, submit, msg));
  node.append(h('div', { class: 'widget-editor' }, form, h('div', { class: 'preview-col' }, h('h4', null, t('preview')), preview.el)));
  drawPreview();

  function markChanged(key) {
    const { control, wrapper } = inputs[key];
    wrapper.classList.toggle('overridden', control.value.trim() !== DEFAULT_TEXTS[language][key]);
  }

  language_.addEventListener('change', () => {
    const old = language;
    language = language_.value;
    // Texts still at the old language's default follow the new language; edited ones stay.
    for (const [key, { control }] of Object.entries(inputs)) {
      if (control.value.trim() === DEFAULT_TEXTS[old][key]) control.value = DEFAULT_TEXTS[language][key];
      markChanged(key);
    }
    drawPreview();
  });

  function value(key) { return inputs[key].control.value.trim() || DEFAULT_TEXTS[language][key]; }

  function drawPreview() { preview.draw(value, language); }

  async function save(e) {
    e.preventDefault();
    submit.disabled = true; say(msg, '');
    const texts = {};
    for (const [key, { control }] of Object.entries(inputs)) {
      const v = control.value.trim();
      if (v && v !== DEFAULT_TEXTS[language][key]) texts[key] = control.value;
    }
    try {
      await api('PUT', '/api/project/widget', { language, texts }, { idempotencyKey: uuid() });
      say(msg, t('saved'), 'ok');
    } catch (err) { say(msg, err.message); }
    submit.disabled = false;
  }
}

/** A static mock of the widget's panel: what visitors will see, updated as the admin types. */
function buildPreview() {
  const title = h('p', { class: 'wp-title' });
  const subtitle = h('p', { class: 'wp-sub' });
  const greeting = h('div', { class: 'wp-msg' });
  const joined = h('p', { class: 'wp-system' });
  const visitorMsg = h('div', { class: 'wp-msg wp-visitor' });
  const placeholder = h('span', { class: 'wp-placeholder' });
  const send = h('span', { class: 'wp-send' });
  const launcher = h('span', { class: 'wp-launcher-label' });
  const el = h('div', { class: 'widget-preview', 'data-testid': 'widget-preview', role: 'img', 'aria-label': '' },
    h('div', { class: 'wp-panel' },
      h('div', { class: 'wp-head' }, title, subtitle),
      h('div', { class: 'wp-body' }, greeting, visitorMsg, joined),
      h('div', { class: 'wp-input' }, placeholder, send)),
    h('div', { class: 'wp-launcher-row' }, launcher, h('span', { class: 'wp-launcher', 'aria-hidden': 'true' }, icon('chat'))));
  return {
    el,
    draw(value, language) {
      title.textContent = value('window_title');
      subtitle.textContent = value('online_subtitle');
      greeting.textContent = value('greeting');
      visitorMsg.textContent = language === 'ru' ? 'Здравствуйте! Есть ли доставка?' : 'Hi! Do you ship abroad?';
      joined.textContent = value('operator_joined').replaceAll('{name}', language === 'ru' ? 'Анна' : 'Anna');
      placeholder.textContent = value('input_placeholder');
      send.textContent = value('send_label');
      launcher.textContent = value('launcher_label');
      el.setAttribute('aria-label', t('preview_label', { title: value('window_title') }));
    },
  };
}

// ---- sites ---------------------------------------------------------------------------------------
async function sitesSection(node) {
  const project = await api('GET', '/api/project');
  let sites = [...(project.sites || [])];
  const list = h('ul', { class: 'sites-list', 'data-testid': 'sites-list' });
  const input = h('input', { type: 'url', placeholder: 'https://example.com', inputmode: 'url', autocomplete: 'off' });
  const msg = message();
  const save = h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'sites-save' }, t('save'));
  node.append(h('p', { class: 'muted' }, t('sites_hint')), list,
    h('form', { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); add(); } },
      field(t('site_origin'), input, { testid: 'site-input' }),
      h('button', { class: 'btn', type: 'submit', 'data-testid': 'site-add' }, t('add'))),
    h('div', { class: 'form-actions' }, save), msg);

  function draw() {
    clear(list);
    if (!sites.length) list.append(h('li', { class: 'muted' }, t('no_sites')));
    sites.forEach((s, i) => list.append(h('li', { 'data-testid': 'site-item' }, h('code', null, s),
      h('button', { class: 'btn btn-ghost btn-small', type: 'button', 'aria-label': t('remove_named', { name: s }),
        onclick: () => { sites.splice(i, 1); draw(); say(msg, t('unsaved'), 'ok'); } }, t('remove')))));
  }
  function add() {
    const v = input.value.trim();
    if (!v) return;
    if (!sites.includes(v)) sites.push(v);
    input.value = '';
    draw();
    say(msg, t('unsaved'), 'ok');
  }
  save.addEventListener('click', async () => {
    if (input.value.trim()) add();
    save.disabled = true; say(msg, '');
    try {
      const p = await api('PUT', '/api/project/sites', { sites }, { idempotencyKey: uuid() });
      sites = [...p.sites];
      draw();
      say(msg, t('saved'), 'ok');
    } catch (err) { say(msg, err.message); }
    save.disabled = false;
  });
  draw();
}
