// Parley operator app: boot, login, the shell (header, routes) and the live wiring.
import { api, setUnauthenticatedHandler } from './api.js';
import { h, clear, avatar } from './dom.js';
import { t, getLang, setLang, LANGUAGES, waitingFor } from './i18n.js';
import { store, applyToRow, inView } from './store.js';
import { startLive } from './live.js';
import { createInbox } from './inbox.js';
import { createConversationView } from './conversation.js';
import * as notify from './notify.js';
import { createPresence } from './presence.js';
import { createVisitors } from './visitors.js';
import * as offers from './offers.js';

const root = document.getElementById('app');
let ui = null;          // the mounted shell: {inbox, conversation, settings, ...}
let stopLive = null;
let watchingVisitors = false;   // the visitors page is shown: its changes are pushed (live.js)
let refreshTimer = null;

// ---- boot ------------------------------------------------------------------------------------
async function boot() {
  document.documentElement.lang = getLang();
  document.title = 'Parley';
  if ('serviceWorker' in navigator) {
    window.addEventListener('load', () => navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => {}));
  }
  setUnauthenticatedHandler(() => { if (store.me) showLogin(t('session_ended')); });
  // Never signed in from this browser (or signed out): the login form at once, without
  // asking the server first - that answer could only be a 401, red in the console.
  if (!signedIn()) { showLogin(); return; }
  for (let attempt = 0; ; attempt++) {
    try {
      const me = await api('GET', '/api/session', undefined, { quiet401: true });
      startApp(me);
      return;
    } catch (e) {
      if (e.status === 401) { showLogin(); return; }
      // Offline start (the shell came from the service worker) or the server is restarting.
      showStarting(e.status === 0 ? t('offline_start') : (e.message || t('network_error')));
      await new Promise((r) => setTimeout(r, Math.min(15000, 1000 * 2 ** attempt)));
    }
  }
}

function showStarting(text) {
  clear(root).append(h('main', { class: 'center-screen' }, h('div', { class: 'card login-card' },
    brand(), h('p', { role: 'status' }, text))));
}

function brand() {
  return h('span', { class: 'brand' }, h('img', { src: '/app/static/icons/icon-192.png', alt: '', width: 28, height: 28 }), 'Parley');
}

function languageSwitch() {
  const select = h('select', { id: 'lang-select', 'data-testid': 'lang-select', class: 'lang-select', onchange: (e) => {
    setLang(e.currentTarget.value);
    if (store.me) mountShell(); else showLogin();
  } });
  for (const [code, name] of LANGUAGES) select.append(h('option', { value: code, selected: code === getLang() }, name));
  return h('span', { class: 'lang' }, h('label', { for: 'lang-select', class: 'visually-hidden' }, t('language')), select);
}

// ---- login -----------------------------------------------------------------------------------
// Whether this browser holds a session cookie worth trying (the cookie itself is HttpOnly).
const SIGNED_IN = 'parley.signed_in';
function signedIn() { try { return localStorage.getItem(SIGNED_IN) === '1'; } catch { return true; } }
function setSignedIn(on) { try { if (on) localStorage.setItem(SIGNED_IN, '1'); else localStorage.removeItem(SIGNED_IN); } catch { /* private mode */ } }

function showLogin(message) {
  teardown();
  store.me = null;
  store.rows.clear();
  document.title = `${t('login_title')} · Parley`;
  const project = h('input', { type: 'text', id: 'login-project', name: 'project', required: true, autocomplete: 'organization',
    'data-testid': 'login-project', autocapitalize: 'off', spellcheck: 'false', value: localStorage.getItem('parley.project') || '' });
  const email = h('input', { type: 'email', id: 'login-email', name: 'email', required: true, autocomplete: 'username',
    'data-testid': 'login-email', value: localStorage.getItem('parley.email') || '' });
  const password = h('input', { type: 'password', id: 'login-password', name: 'password', required: true,
    autocomplete: 'current-password', 'data-testid': 'login-password' });
  // Two-factor login (issue 23): asked for once the password is right.
  const code = h('input', { type: 'text', id: 'login-code', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code',
    'data-testid': 'login-code', maxlength: '20', spellcheck: 'false' });
  const codeField = h('div', { class: 'field', hidden: true, 'data-testid': 'login-code-field' },
    h('label', { for: 'login-code' }, t('login_code')), code, h('p', { class: 'field-hint' }, t('login_code_hint')));
  const error = h('p', { class: 'form-message error', role: 'alert', 'data-testid': 'login-error' }, message || '');
  const submit = h('button', { class: 'btn btn-primary btn-block', type: 'submit', 'data-testid': 'login-submit' }, t('log_in'));
  const form = h('form', { class: 'card login-card', 'aria-labelledby': 'login-heading', onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true; error.textContent = '';
    try {
      const result = await api('POST', '/api/session', { project: project.value.trim(), email: email.value.trim(), password: password.value,
        ...(codeField.hidden ? {} : { code: code.value.trim() }) }, { quiet401: true });
      localStorage.setItem('parley.project', project.value.trim());
      localStorage.setItem('parley.email', email.value.trim());
      startApp(result.operator);
    } catch (err) {
      submit.disabled = false;
      if (err.code === 'two_factor_required' || err.code === 'two_factor_invalid') {
        const first = codeField.hidden;
        codeField.hidden = false;
        error.textContent = first ? '' : err.message;
        code.select(); code.focus();
        return;
      }
      error.textContent = err.message || t('network_error');
      password.select();
    }
  } },
  h('div', { class: 'login-head' }, brand(), languageSwitch()),
  h('h1', { id: 'login-heading' }, t('login_title')),
  h('div', { class: 'field' }, h('label', { for: 'login-project' }, t('project')), project),
  h('div', { class: 'field' }, h('label', { for: 'login-email' }, t('email')), email),
  h('div', { class: 'field' }, h('label', { for: 'login-password' }, t('password')), password),
  codeField, error, submit);
  clear(root).append(h('main', { class: 'center-screen' }, form));
  notify.clearToasts();
  setSignedIn(false);
  (project.value ? (email.value ? password : email) : project).focus();
}

// ---- the app ------------------------------------------------------------------------------------
function startApp(me) {
  setSignedIn(true);
  if (me.two_factor && me.two_factor.must_enrol) { showEnrolment(me); return; }
  store.me = me;
  mountShell();
  notify.initNotify({ me, onOpen: openConversation });
  stopLive = startLive({
    onMessage,
    onResync: async () => { await Promise.all([ui.inbox.refresh(), ui.conversation.reload()]); },
    onState: connectionState,
    onRevoked: () => showLogin(t('session_ended')),
  });
  stopLive.watchVisitors(watchingVisitors);   // the app may have opened on the visitors page
  if (me.is_owner) {
    // Before the chat is enabled the owner is not an operator yet: start where it can be enabled.
    api('GET', '/api/project').then((p) => { if (!p.chat_enabled) location.hash = '#/settings/chat'; }).catch(() => {});
  }
  clearInterval(refreshTimer);
  // Safety net: a conversation another operator takes is not pushed to us; refresh now and then.
  refreshTimer = setInterval(() => { if (ui && document.visibilityState === 'visible') ui.inbox.refresh(); }, 60000);
}

/** The project requires two-factor login and this operator has none: the session may only
 *  enrol (the API refuses the rest), so the screen is the enrolment alone. */
async function showEnrolment(me) {
  teardown();
  store.me = me;
  const node = h('div', { class: 'card login-card enrolment', 'data-testid': 'enrolment' },
    h('div', { class: 'login-head' }, brand(), languageSwitch()),
    h('h1', null, t('tf_setup_title')), h('p', null, t('tf_setup_intro')));
  clear(root).append(h('main', { class: 'center-screen' }, node));
  const { securitySection } = await import('./security.js');
  await securitySection(node, { onEnabled: async () => startApp(await api('GET', '/api/session')) });
  node.append(h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'logout', onclick: logout }, t('log_out')));
}

function teardown() {
  if (stopLive) { stopLive(); stopLive = null; }
  clearInterval(refreshTimer);
  if (ui) { ui.inbox.destroy(); ui.conversation.destroy(); ui.visitors.hide(); ui = null; }
}

function mountShell() {
  const me = store.me;
  const hadUi = !!ui;
  if (ui) { ui.inbox.destroy(); ui.conversation.destroy(); }
  document.documentElement.lang = getLang();
  const route = parseRoute();
  const ctx = {
    route,
    closeConversation: () => { location.hash = `#/inbox/${ui.inbox.view}`; },
    refreshInbox: () => scheduleRefresh(0),
    toastError: notify.toastError,
  };
  const inbox = createInbox(ctx);
  const conversation = createConversationView(ctx);
  const connection = h('span', { class: 'connection', role: 'status', 'data-testid': 'connection' });
  const presence = createPresence(me);
  const notifButton = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'enable-notifications',
    hidden: notify.desktopPermission() !== 'default', onclick: async () => {
      const result = await notify.requestDesktopPermission();
      notifButton.hidden = result !== 'default';
      if (result === 'denied') notify.toast({ kind: 'info', body: t('notifications_denied') });
      if (result === 'granted') notify.toast({ kind: 'info', body: t('notifications_enabled') });
    } }, t('enable_notifications'));
  const canSettings = me.is_admin || me.is_owner;
  const nav = h('nav', { class: 'main-nav', 'aria-label': t('main_nav') },
    h('a', { href: '#/inbox/new', 'data-testid': 'inbox-link', class: 'nav-link' }, t('inbox')),
    h('a', { href: '#/visitors', 'data-testid': 'visitors-link', class: 'nav-link' }, t('visitors_nav')),
    me.is_admin ? h('a', { href: '#/reports', 'data-testid': 'reports-link', class: 'nav-link' }, t('reports_nav')) : null,
    canSettings ? h('a', { href: '#/settings/operators', 'data-testid': 'settings-link', class: 'nav-link' }, t('settings')) : null);
  const header = h('header', { class: 'topbar' },
    h('a', { href: '#/inbox/new', class: 'brand-link', 'aria-label': t('home') }, brand()), nav,
    h('span', { class: 'spacer' }), presence.el, connection, notifButton, languageSwitch(),
    h('a', { class: 'me', href: '#/settings/security', 'data-testid': 'me-link', title: t('settings_security') },
      avatar(me.name, me.avatar_url, 'sm'), h('span', { class: 'me-name' }, me.name || me.email)),
    h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'logout', onclick: logout }, t('log_out')));
  const offline = h('div', { class: 'offline-banner', role: 'status', hidden: true }, t('reconnecting'));
  const workspace = h('div', { class: 'workspace' }, inbox.el, conversation.el);
  const settingsHost = h('div', { class: 'settings-host', hidden: true });
  const visitors = createVisitors({ watch: (on) => { watchingVisitors = on; if (stopLive) stopLive.watchVisitors(on); }, openConversation,
    toastError: notify.toastError });
  const reportsHost = h('section', { class: 'reports-page', hidden: true, 'aria-labelledby': 'reports-title' });
  const main = h('main', { id: 'main', class: 'main', tabindex: '-1' }, workspace, visitors.el, reportsHost, settingsHost);
  const skip = h('a', { class: 'skip-link', href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, t('skip_to_content'));
  clear(root).append(skip, header, offline, main);
  const previous = ui;
  if (previous) previous.visitors.hide();
  ui = { inbox, conversation, connection, offline, workspace, settingsHost, nav, settings: null, canSettings, presence, visitors,
    reportsHost, reportsShown: false };
  if (previous && previous.lastState) connectionState(previous.lastState === 'resynced' ? 'online' : previous.lastState);
  route_();
  if (!hadUi || !previous) inbox.refresh(); else inbox.setView(inbox.view);
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 'settings') return { screen: 'settings', section: parts[1] };
  if (parts[0] === 'visitors') return { screen: 'visitors' };
  if (parts[0] === 'reports') return { screen: 'reports' };
  // The link a CRM lead carries (crm-bridge's conversation_link): opened in the inbox view it belongs to.
  if (parts[0] === 'conversations' && parts[1]) return { screen: 'conversation', id: parts[1] };
  return { screen: 'inbox', view: parts[1] || 'new', id: parts[2] || null };
}

async function route_() {
  if (!ui) return;
  const route = parseRoute();
  const current = { settings: 'settings-link', visitors: 'visitors-link', reports: 'reports-link' }[route.screen] || 'inbox-link';
  for (const a of ui.nav.querySelectorAll('a')) a.setAttribute('aria-current', a.dataset.testid === current ? 'page' : 'false');
  ui.reportsHost.hidden = route.screen !== 'reports';
  if (route.screen === 'reports') {
    ui.workspace.hidden = true;
    ui.settingsHost.hidden = true;
    ui.visitors.hide();
    document.title = `${t('reports_nav')} · Parley`;
    if (!ui.reportsShown) {   // drawn once; its form reloads the figures
      ui.reportsShown = true;
      clear(ui.reportsHost).append(h('h1', { id: 'reports-title' }, t('reports_nav')));
      const { reportsSection } = await import('./reports.js');
      await reportsSection(ui.reportsHost);
    }
    return;
  }
  if (route.screen === 'visitors') {
    ui.workspace.hidden = true;
    ui.settingsHost.hidden = true;
    document.title = `${t('visitors_nav')} · Parley`;
    ui.visitors.show();
    return;
  }
  ui.visitors.hide();
  // The CRM and working-hours pages open for anyone who has their URL: a non-admin sees the API's refusal there.
  if (route.screen === 'settings' && (ui.canSettings || ['crm', 'crm_deliveries', 'hours', 'notifications', 'security'].includes(route.section))) {
    ui.workspace.hidden = true;
    ui.settingsHost.hidden = false;
    document.title = `${t('settings')} · Parley`;
    const { createSettings } = await import('./settings.js');
    if (!ui.settings) {
      ui.settings = createSettings({ route });
      clear(ui.settingsHost).append(ui.settings.el);
    } else if (ui.settings.section !== route.section) ui.settings.show(route.section);
    return;
  }
  ui.workspace.hidden = false;
  ui.settingsHost.hidden = true;
  if (route.screen === 'conversation') { openConversation(route.id); return; }
  if (route.screen !== 'inbox' || !['new', 'mine', 'closed', 'all'].includes(route.view)) { location.replace('#/inbox/new'); return; }
  ui.inbox.setView(route.view);
  ui.inbox.setActive(route.id);
  ui.workspace.classList.toggle('has-open', !!route.id);
  if (route.id) ui.conversation.open(route.id);
  else ui.conversation.close();
  updateTitle();
}
window.addEventListener('hashchange', () => route_());

function openConversation(id) {
  const row = store.rows.get(id);
  let view = 'mine';
  if (row && inView(row, 'new')) view = 'new';
  else if (row && inView(row, 'closed')) view = 'closed';
  else if (row && !inView(row, 'mine') && store.me.is_admin) view = 'all';
  if (location.hash.replace(/^#/, '') !== `/inbox/${view}/${id}`) location.hash = `#/inbox/${view}/${id}`;
  else route_();
}

async function logout() {
  try { await api('DELETE', '/api/session', undefined, { quiet401: true }); } catch { /* gone anyway */ }
  showLogin();
}

// ---- live --------------------------------------------------------------------------------------
function onMessage(msg) {
  if (!ui) return;
  if (msg.type === 'conversation_event') {
    const result = applyToRow(msg);
    if (result === 'unknown' || result === 'gap') scheduleRefresh(400);
    ui.conversation.applyEvent(msg);
    offers.onConversationEvent(msg);
    notify.onConversationEvent(msg);
    if (msg.event === 'chat.conversation_started' && result === true) notify.notifyNewConversation(msg);
    updateTitle();
  } else if (msg.type === 'typing') {   // the visitor is typing (ephemeral, never stored)
    ui.conversation.showTyping(msg);
  } else if (msg.type === 'lead_outcome') {
    ui.conversation.applyLeadOutcome(msg);
  } else if (msg.type === 'visitors') {   // the live visitors' changes, while that page is shown
    ui.visitors.apply(msg);
  } else if (msg.type === 'presence') {
    ui.presence.apply(msg);
  } else if (msg.type === 'notification' && msg.kind === 'offer') {   // auto-assignment: Accept or let it move on
    offers.showOffer(msg, openConversation);
  } else if (msg.type === 'notification' && msg.kind === 'assigned') {
    notify.notifyAssigned(msg);
    scheduleRefresh(300);
  } else if (msg.type === 'notification' && msg.kind === 'unanswered') {
    // Working hours: a new conversation nobody took for N working minutes (sent to admins only).
    notify.notifyUnanswered(msg);
    scheduleRefresh(300);
  }
}

function scheduleRefresh(delay) {
  clearTimeout(scheduleRefresh.timer);
  scheduleRefresh.timer = setTimeout(() => { if (ui) ui.inbox.refresh(); }, delay);
}

function connectionState(state) {
  if (!ui) return;
  ui.lastState = state;
  const online = state === 'online' || state === 'resynced';
  ui.connection.className = `connection ${online ? 'is-online' : state === 'connecting' ? 'is-connecting' : 'is-offline'}`;
  ui.connection.textContent = online ? t('live') : state === 'connecting' ? t('connecting') : t('offline');
  ui.offline.hidden = state !== 'offline';
  if (state === 'resynced') notify.toast({ kind: 'info', body: t('reconnected'), timeout: 4000 });
}

function updateTitle() {
  if (!store.me) return;
  let waiting = 0;
  for (const row of store.rows.values()) if (inView(row, 'new') || inView(row, 'mine')) waiting += row.unread > 0 ? 1 : 0;
  document.title = `${waiting ? `(${waiting}) ` : ''}${t('inbox')} · Parley`;
  notify.badge(waiting);
}

// Waiting times tick.
setInterval(() => {
  for (const el of document.querySelectorAll('[data-since]')) el.textContent = waitingFor(el.dataset.since);
}, 1000);

boot();
