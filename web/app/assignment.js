// How new conversations are assigned (admins): manual, round robin or least busy, how long an
// offer stands, and how many open conversations an operator takes (least busy).
// GET and PUT /api/project/assignment; the server checks every field (422 `<field>_invalid`),
// and its message is shown beside the form as text.
import { api } from './api.js';
import { h } from './dom.js';
import { t } from './i18n.js';

const MODES = ['manual', 'round_robin', 'least_busy'];

export async function assignmentSection(node) {
  const current = await api('GET', '/api/project/assignment');
  const modes = h('fieldset', { class: 'field' }, h('legend', null, t('assignment_mode')));
  for (const m of MODES) {
    modes.append(h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'assignment_mode', value: m,
      'data-testid': `assignment-mode-${m}`, checked: current.assignment_mode === m }), ' ', t(`mode_${m}`)));
  }
  const seconds = h('input', { type: 'number', id: 'offer-seconds', min: 5, max: 600, required: true,
    'data-testid': 'offer-seconds', value: String(current.offer_seconds) });
  const capacity = h('input', { type: 'number', id: 'default-capacity', min: 1, max: 100, required: true,
    'data-testid': 'default-capacity', value: String(current.default_capacity) });
  const message = h('p', { class: 'form-message', 'data-testid': 'assignment-message' });
  const form = h('form', { class: 'card', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = '';
    const mode = form.querySelector('input[name="assignment_mode"]:checked');
    try {
      await api('PUT', '/api/project/assignment', { assignment_mode: mode ? mode.value : 'manual',
        offer_seconds: Number(seconds.value), default_capacity: Number(capacity.value), capacities: current.capacities || {} });
      message.className = 'form-message ok'; message.setAttribute('role', 'status');
      message.textContent = t('assignment_saved');
    } catch (err) {
      message.className = 'form-message error'; message.setAttribute('role', 'alert');
      message.textContent = err.message;
    }
  } },
  h('p', { class: 'hint' }, t('assignment_help')), modes,
  h('div', { class: 'field' }, h('label', { for: 'offer-seconds' }, t('offer_seconds')), seconds),
  h('div', { class: 'field' }, h('label', { for: 'default-capacity' }, t('default_capacity')), capacity),
  message, h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'assignment-save' }, t('assignment_save')));
  node.append(form);
}
