// Proactive triggers (admins): "after N seconds on a page matching P (and/or this many
// pages, a custom param), show message M once per visitor per day", in Russian and
// English, on or off. The list is saved whole (PUT /api/project/triggers); the server
// checks every field (422 trigger_<field>_invalid) and its message is shown as text.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t } from './i18n.js';

const EXAMPLE = { name: '', enabled: true, page: '', seconds: 30, min_pages: 1, param: null, text: { en: '', ru: '' } };

export async function triggersSection(node) {
  const project = await api('GET', '/api/project');
  let triggers = (project.triggers || []).map((tr) => ({ ...tr, text: { en: '', ru: '', ...tr.text } }));
  const list = h('div', { class: 'triggers', 'data-testid': 'triggers-list' });
  const message = h('p', { class: 'form-message', 'data-testid': 'triggers-message' });

  function field(label, input) { return h('label', { class: 'field' }, h('span', null, label), input); }

  function card(tr, i) {
    const input = (key, props, get = (e) => e.target.value) => h('input', { ...props,
      oninput: (e) => { tr[key] = get(e); } });
    const number = (key, min, max) => input(key, { type: 'number', min, max, value: String(tr[key]),
      'data-testid': `trigger-${key}` }, (e) => Number(e.target.value));
    const text = (lang) => h('textarea', { rows: 2, maxlength: 500, 'data-testid': `trigger-text-${lang}`,
      oninput: (e) => { tr.text[lang] = e.target.value; } }, tr.text[lang] || '');
    const paramName = h('input', { value: tr.param ? tr.param.name : '', maxlength: 64, 'data-testid': 'trigger-param-name' });
    const paramValue = h('input', { value: tr.param ? tr.param.value : '', maxlength: 256, 'data-testid': 'trigger-param-value' });
    const param = () => { tr.param = paramName.value.trim() ? { name: paramName.value.trim(), value: paramValue.value } : null; };
    paramName.addEventListener('input', param);
    paramValue.addEventListener('input', param);
    return h('fieldset', { class: 'card trigger', 'data-testid': 'trigger' },
      h('legend', null, tr.name || t('triggers_new')),
      h('label', { class: 'checkbox' }, input('enabled', { type: 'checkbox', checked: tr.enabled, 'data-testid': 'trigger-enabled' },
        (e) => e.target.checked), ' ', t('triggers_enabled')),
      field(t('triggers_name'), input('name', { value: tr.name, maxlength: 80, required: true, 'data-testid': 'trigger-name' })),
      field(t('triggers_page'), input('page', { value: tr.page, maxlength: 300, placeholder: '/pricing*', 'data-testid': 'trigger-page' })),
      h('div', { class: 'row' }, field(t('triggers_seconds'), number('seconds', 0, 3600)),
        field(t('triggers_min_pages'), number('min_pages', 1, 100))),
      h('div', { class: 'row' }, field(t('triggers_param_name'), paramName), field(t('triggers_param_value'), paramValue)),
      field(t('triggers_text_en'), text('en')), field(t('triggers_text_ru'), text('ru')),
      h('button', { class: 'btn btn-ghost btn-small', type: 'button', 'data-testid': 'trigger-remove',
        onclick: () => { triggers.splice(i, 1); draw(); } }, t('triggers_remove')));
  }

  function draw() {
    clear(list).append(...triggers.map(card));
    if (!triggers.length) list.append(h('p', { class: 'muted' }, t('triggers_none')));
  }

  const form = h('form', { class: 'triggers-form', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    const body = triggers.map((tr) => ({ ...(tr.id ? { id: tr.id } : {}), name: tr.name, enabled: tr.enabled, page: tr.page,
      seconds: tr.seconds, min_pages: tr.min_pages, param: tr.param,
      text: Object.fromEntries(Object.entries(tr.text).filter(([, v]) => v && v.trim())) }));
    try {
      const saved = await api('PUT', '/api/project/triggers', { triggers: body });
      triggers = saved.triggers.map((tr) => ({ ...tr, text: { en: '', ru: '', ...tr.text } }));
      draw();
      message.className = 'form-message ok'; message.setAttribute('role', 'status');
      message.textContent = t('triggers_saved');
    } catch (err) {
      message.className = 'form-message error'; message.setAttribute('role', 'alert');
      message.textContent = err.message;
    }
  } },
  h('p', { class: 'hint' }, t('triggers_help')), list,
  h('button', { class: 'btn', type: 'button', 'data-testid': 'trigger-add',
    onclick: () => { triggers.push(structuredClone(EXAMPLE)); draw(); } }, t('triggers_add')),
  message, h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'triggers-save' }, t('triggers_save')));
  draw();
  node.append(form);
}
