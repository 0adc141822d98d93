// Settings › Notifications (everyone): whether assignment, offer and unanswered pop-ups stay
// on screen until acted on (notify.keepsUntilActed, this operator in this browser), and
// the browser's permission for desktop notifications, with the way to ask for it.
import { h } from './dom.js';
import { t } from './i18n.js';
import * as notify from './notify.js';

export function notificationsSection(node) {
  const stay = h('input', { type: 'checkbox', 'data-testid': 'notifications-stay', id: 'notifications-stay',
    'aria-describedby': 'notifications-stay-hint' });
  stay.checked = notify.keepsUntilActed();
  const saved = h('p', { class: 'form-message ok', role: 'status', 'aria-live': 'polite' });
  stay.addEventListener('change', () => {
    notify.setKeepsUntilActed(stay.checked);
    saved.textContent = t('saved');
  });
  const permission = h('p', { 'data-testid': 'notifications-permission' });
  const ask = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'notifications-ask',
    onclick: async () => { await notify.requestDesktopPermission(); drawPermission(); } }, t('enable_notifications'));
  function drawPermission() {
    const state = notify.desktopPermission();
    permission.textContent = t(`notifications_permission_${state}`);
    ask.hidden = state !== 'default';
  }
  drawPermission();
  node.append(h('div', { class: 'card form-grid' },
    h('label', { class: 'check' }, stay, h('span', null, t('notifications_stay'))),
    h('p', { class: 'field-hint', id: 'notifications-stay-hint' }, t('notifications_stay_hint')),
    saved, permission, ask));
}
