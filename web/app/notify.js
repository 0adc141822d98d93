// Notifications: a short sound, the browser's desktop notification and an in-app toast.
// Assignment notifications stay until acknowledged (and survive a reload via localStorage).
import { h } from './dom.js';
import { t } from './i18n.js';

let region = null;
let operatorId = null;
let openConversation = () => {};
let audio = null;

const storageKey = () => `parley.assignments.${operatorId}`;

export function initNotify({ me, onOpen }) {
  operatorId = me.id;
  openConversation = onOpen;
  region = document.getElementById('toasts');
  // Browsers start audio only after a user gesture: unlock on the first one.
  const unlock = () => {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === 'suspended') audio.resume();
    } catch { /* no audio */ }
  };
  document.addEventListener('pointerdown', unlock, { once: true, capture: true });
  document.addEventListener('keydown', unlock, { once: true, capture: true });
  for (const item of pendingAssignments()) showAssignedToast(item, false);
}

export function clearToasts() {
  if (region) region.replaceChildren();
}

// ---- sound ------------------------------------------------------------------------------
export function ding() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume();
    const now = audio.currentTime;
    for (const [freq, start] of [[880, 0], [1320, 0.12]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.25, now + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.3);
    }
  } catch { /* sound is a nicety */ }
}

// ---- desktop notifications ------------------------------------------------------------------
export function desktopSupported() { return 'Notification' in window; }
export function desktopPermission() { return desktopSupported() ? Notification.permission : 'unsupported'; }
export async function requestDesktopPermission() {
  if (!desktopSupported()) return 'unsupported';
  try { return await Notification.requestPermission(); } catch { return Notification.permission; }
}

// The seed's guide told operators to change OS settings because assignment pop-ups
// vanished too fast: the ones that wait on the operator (an assignment, an offer, an
// unanswered alert) now stay on screen until acted on (requireInteraction), unless the
// operator turns that off in Settings › Notifications. Kept per operator in this browser:
// how notifications behave is a matter of the device they show on.
const stayKey = () => `parley.notifications.stay.${operatorId}`;
export function keepsUntilActed() {
  try { return localStorage.getItem(stayKey()) !== 'false'; } catch { return true; }
}
export function setKeepsUntilActed(on) {
  try { localStorage.setItem(stayKey(), on ? 'true' : 'false'); } catch { /* private mode: the default stays */ }
}

/** A desktop notification (when permitted); `waitsOnMe`: it stays until acted on, as the
 *  operator's setting says. Returns it (to close when what it announced is gone) or null. */
export function desktop(title, body, { tag, waitsOnMe = false, conversationId } = {}) {
  if (desktopPermission() !== 'granted') return null;
  try {
    const n = new Notification(title, { body, tag, requireInteraction: waitsOnMe && keepsUntilActed(),
      icon: '/app/static/icons/icon-192.png', lang: document.documentElement.lang });
    n.onclick = () => { window.focus(); if (conversationId) openConversation(conversationId); n.close(); };
    return n;
  } catch { return null; /* e.g. Android requires the service worker to show them */ }
}

/** The count waiting on this operator, on the app's icon where the platform has a badge. */
export function badge(count) {
  try {
    if (count > 0) navigator.setAppBadge?.(count)?.catch?.(() => {});
    else navigator.clearAppBadge?.()?.catch?.(() => {});
  } catch { /* no badge here */ }
}

// ---- toasts ---------------------------------------------------------------------------------
/**
 * toast({kind, title, body, actions:[{label, primary, onClick}], persistent, timeout})
 * Returns a function that removes the toast.
 */
export function toast({ kind = 'info', title, body, extra = null, actions = [], persistent = false, timeout = 6000, role }) {
  if (!region) region = document.getElementById('toasts');
  const urgent = kind === 'assigned' || kind === 'unanswered' || kind === 'error';
  const node = h('div', { class: `toast toast-${kind}`, 'data-testid': 'toast', 'data-kind': kind,
    role: role || (urgent ? 'alert' : 'status'), 'aria-live': urgent ? 'assertive' : 'polite' });
  const remove = () => { clearTimeout(timer); node.remove(); };
  node.append(h('div', { class: 'toast-text' }, title ? h('strong', null, title) : null, body ? h('p', null, body) : null, extra));
  const bar = h('div', { class: 'toast-actions' });
  for (const a of actions) {
    bar.append(h('button', { class: `btn btn-small${a.primary ? ' btn-primary' : ''}`, type: 'button',
      'data-testid': a.testid || null, onclick: () => { a.onClick?.(); remove(); } }, a.label));
  }
  if (!actions.some((a) => a.dismiss)) {
    bar.append(h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'toast-dismiss',
      'aria-label': t('dismiss'), onclick: remove }, '✕'));
  }
  node.append(bar);
  region.append(node);
  const timer = persistent ? null : setTimeout(remove, timeout);
  return remove;
}

export function toastError(message) { return toast({ kind: 'error', title: t('error'), body: message, timeout: 8000 }); }

// ---- the two notifications the brief asks for ----------------------------------------------
export function notifyNewConversation(ev) {
  ding();
  const body = ev.data && ev.data.page_url ? t('from_page', { url: ev.data.page_url }) : '';
  desktop(t('new_conversation'), body, { tag: `new-${ev.conversation_id}`, conversationId: ev.conversation_id });
  toast({ kind: 'new', title: t('new_conversation'), body,
    actions: [{ label: t('open'), primary: true, testid: 'toast-open', onClick: () => openConversation(ev.conversation_id) }],
    timeout: 10000 });
}

function pendingAssignments() {
  try { return JSON.parse(localStorage.getItem(storageKey()) || '[]'); } catch { return []; }
}
function savePending(items) {
  try { localStorage.setItem(storageKey(), JSON.stringify(items.slice(-20))); } catch { /* private mode */ }
}
function acknowledge(conversationId) {
  savePending(pendingAssignments().filter((x) => x.conversation_id !== conversationId));
}

export function notifyAssigned(msg) {
  const item = { conversation_id: msg.conversation_id, by: msg.by, at: new Date().toISOString() };
  const items = pendingAssignments().filter((x) => x.conversation_id !== item.conversation_id);
  items.push(item);
  savePending(items);
  ding();
  desktop(t('assigned_title'), t('assigned_body', { by: msg.by }),
    { tag: `assigned-${msg.conversation_id}`, waitsOnMe: true, conversationId: msg.conversation_id });
  showAssignedToast(item, true);
}

function showAssignedToast(item) {
  if (!region) region = document.getElementById('toasts');
  const existing = region.querySelector(`[data-kind="assigned"][data-conversation-id="${CSS.escape(item.conversation_id)}"]`);
  if (existing) existing.remove();
  const remove = toast({
    kind: 'assigned', persistent: true, title: t('assigned_title'), body: t('assigned_body', { by: item.by }),
    actions: [
      { label: t('open'), primary: true, testid: 'toast-open', dismiss: true,
        onClick: () => { acknowledge(item.conversation_id); openConversation(item.conversation_id); } },
      { label: t('ok'), testid: 'toast-dismiss', dismiss: true, onClick: () => acknowledge(item.conversation_id) },
    ],
  });
  const node = region.lastElementChild;
  if (node) node.dataset.conversationId = item.conversation_id;
  return remove;
}

// ---- working hours: a new conversation nobody has taken for N working minutes (admins) ------
/** The `unanswered` notification: a sound, a desktop notification and a toast with Open that stays until acted on. */
export function notifyUnanswered(msg) {
  const n = Number(msg.minutes);
  const title = t(n === 1 ? 'unanswered_title_one' : 'unanswered_title', { n });
  ding();
  desktop(title, t('unanswered_body'), { tag: `unanswered-${msg.conversation_id}`, waitsOnMe: true, conversationId: msg.conversation_id });
  if (!region) region = document.getElementById('toasts');
  const existing = region.querySelector(`[data-kind="unanswered"][data-conversation-id="${CSS.escape(msg.conversation_id)}"]`);
  if (existing) existing.remove();
  waitingBeyond.delete(msg.conversation_id);
  const remove = toast({ kind: 'unanswered', persistent: true, title, body: t('unanswered_body'),
    actions: [{ label: t('open'), primary: true, testid: 'toast-open', onClick: () => openConversation(msg.conversation_id) }] });
  const node = region.lastElementChild;
  if (node) node.dataset.conversationId = msg.conversation_id;
  capUnanswered();
  return remove;
}

// A morning's worth of unanswered alerts must not wall off the inbox they point at: the
// newest few stay as toasts, the rest are counted in one "more waiting in New" toast.
const MAX_UNANSWERED_TOASTS = 3;
const waitingBeyond = new Set();

function capUnanswered() {
  const shown = [...region.querySelectorAll('[data-kind="unanswered"][data-conversation-id]')];
  for (const node of shown.slice(0, Math.max(0, shown.length - MAX_UNANSWERED_TOASTS))) {
    waitingBeyond.add(node.dataset.conversationId);
    node.remove();
  }
  const summary = region.querySelector('[data-kind="unanswered-more"]');
  if (summary) summary.remove();
  if (!waitingBeyond.size) return;
  toast({ kind: 'unanswered-more', persistent: true, title: t('unanswered_more', { n: waitingBeyond.size }),
    actions: [{ label: t('open_new'), primary: true, testid: 'toast-open-new', onClick: () => {
      waitingBeyond.clear(); location.hash = '#/inbox/new'; } }] });
  region.prepend(region.lastElementChild);   // above the newest alerts, not between them
}

/** The unanswered alert goes by itself once someone has the conversation or it is closed:
 *  an admin is not left dismissing alerts that no longer need anyone. */
export function onConversationEvent(msg) {
  const d = msg.data || {};
  const handled = ['assignment.taken', 'assignment.assigned', 'assignment.accepted'].includes(msg.event)
    || (msg.event === 'status.changed' && d.status !== 'new');
  if (!handled || !region) return;
  const node = region.querySelector(`[data-kind="unanswered"][data-conversation-id="${CSS.escape(msg.conversation_id)}"]`);
  if (node) node.remove();
  if (waitingBeyond.delete(msg.conversation_id)) capUnanswered();
}
