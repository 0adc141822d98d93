/* Parley visitor widget. Plain ES2020, no build step; contract: docs/visitor-protocol.md.
 * Snippet: <script async src="https://GATEWAY/widget.js" data-project="demo"></script>
 * Every text from the server or the visitor goes into the DOM as text (textContent,
 * Text nodes, append(string)), never as HTML. */
(() => {
  'use strict';
  const W = window, D = document;
  if (W.Parley && W.Parley._v) return; // the snippet was pasted twice

  const me = D.currentScript
    || D.querySelector('script[data-project][src*="widget.js"]')
    || D.querySelector('script[data-project]');
  const PROJECT = me && me.getAttribute('data-project');
  if (!PROJECT) { console.warn('[parley] widget.js needs data-project on its <script>'); return; }
  const ORIGIN = new URL(me.getAttribute('src') || '/', location.href).origin;
  const MAX_FILE = 10 * 1024 * 1024, MAX_TEXT = 4000, MAX_PARAMS = 20;
  const warn = (...a) => console.warn('[parley]', ...a);

  // ---- storage (localStorage may be missing or throw: private modes, sandboxed frames)
  const KEY = `parley:${PROJECT}:`, mem = {};
  const store = {
    get(k) { try { return localStorage.getItem(KEY + k); } catch { return k in mem ? mem[k] : null; } },
    set(k, v) { mem[k] = v; try { localStorage.setItem(KEY + k, v); } catch { /* kept in memory */ } },
  };
  const readOutbox = () => {
    try {
      const a = JSON.parse(store.get('outbox') || '[]');
      return Array.isArray(a) ? a.filter(e => e && typeof e.id === 'string') : [];
    } catch { return []; }
  };
  const writeOutbox = a => store.set('outbox', JSON.stringify(a));
  const unqueue = id => { const a = readOutbox(), b = a.filter(e => e.id !== id); if (b.length !== a.length) writeOutbox(b); };

  const uuid = () => {
    const c = W.crypto;
    if (c && c.randomUUID) { try { return c.randomUUID(); } catch { /* insecure context */ } }
    const b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b); else for (let i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const x = [...b].map(v => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  };

  // ---- state (declared before the API: queued calls run at once)
  let T = {}, lang = '', host, ui = {}, isOpen = false;
  let token = store.get('token'), needSession = true;
  // The widget connects as the page loads, so identify() or reset() may come while a session
  // is being asked for (sessionGen moves on): that answer is for who the visitor was, and open() asks again.
  let sessionGen = 0;
  let ws = null, connected = false, opening = false, timer = 0, attempt = 0, helloAt = 0, lastSeq = 0, want = false;
  let connTimer = 0, waitTimer = 0, hasVisitor = false, joined = false;
  // Working hours (docs/working-hours.md): closed, a visitor without a conversation that is
  // still going gets the offline form instead of the chat; switched live by `availability`.
  let avail = { open: true, next: null }, convId = null, convClosed = false;
  // Nobody took this conversation for the project's unanswered minutes (the gateway's
  // `unanswered` frame): the visitor is told so and asked for a way to answer them.
  let unanswered = false, contactsGiven = false;
  const byId = new Map();

  // ---- public API: Parley.setCustomParams, the Roistat alias, and the pre-load queue
  const params = Object.create(null);
  let paramsSet = false;
  function setCustomParams(obj) {
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) { warn('setCustomParams expects an object'); return; }
    for (const [k, v0] of Object.entries(obj)) {
      let v = v0;
      if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') v = String(v);
      if (typeof v !== 'string') warn(`param "${k}" dropped: the value must be a string, number or boolean`);
      else if (!k || k.length > 64) warn(`param "${k.slice(0, 64)}…" dropped: the key must be 1 to 64 characters`);
      else if (v.length > 256) warn(`param "${k}" dropped: the value is longer than 256 characters`);
      else if (!(k in params) && Object.keys(params).length >= MAX_PARAMS) warn(`param "${k}" dropped: at most ${MAX_PARAMS} params`);
      else params[k] = v;
    }
    paramsSet = true;
    if (connected) send({ type: 'params', params: { ...params } });
  }
  // Parley.identify({id, name, email, hash}): a logged-in user of the site, verified by the
  // gateway (hash = hex HMAC-SHA256 of id under the project's identity secret, made on the
  // site's server). Verified, they keep their conversations on every device; a missing or
  // wrong hash is ignored (anonymous) with a warning here.
  // Parley.identify(null) or Parley.reset(): the site's user logged out - the widget
  // forgets them (token, transcript, unsent messages) and is an anonymous visitor again.
  // A page that no longer calls identify gets the same at its next load: the gateway does
  // not reuse a verified visitor's token without the page vouching for them.
  let identity = null;
  function identify(obj) {
    if (obj === null || obj === undefined) { reset(); return; }
    if (typeof obj !== 'object' || (typeof obj.id !== 'string' && typeof obj.id !== 'number') || obj.id === '') {
      warn('identify expects {id, name, email, hash}; ignored'); return;
    }
    const text = v => (typeof v === 'string' && v ? v.slice(0, 200) : undefined);
    identity = { id: String(obj.id), name: text(obj.name), email: text(obj.email), hash: text(obj.hash) };
    if (!identity.hash) warn('identify: no hash, so the visitor stays anonymous (see the identity secret in the app settings)');
    needSession = true; sessionGen++;
    // Someone else than the last identified visitor (or an anonymous one logging in): what
    // this browser showed is not theirs - forgotten now, before anything new is typed.
    if (token && store.get('identified') !== identity.id) { forget(); token = null; store.set('token', ''); store.set('visitor', ''); }
    store.set('identified', identity.id);
    if (ws) ws.close(); else if (ui.p) connect(); // reconnects as the verified visitor
  }
  function reset() {
    identity = null; needSession = true; sessionGen++;
    forget();
    store.set('identified', '');
    token = null; store.set('token', ''); store.set('visitor', '');
    if (ws) ws.close(); else if (ui.p) connect();
  }
  const api = { setCustomParams, identify, reset, _v: 1 };
  const run = c => {
    if (Array.isArray(c) && typeof c[0] === 'string' && c[0][0] !== '_' && typeof api[c[0]] === 'function') api[c[0]](...c.slice(1));
    else warn('unknown command', c);
  };
  const early = [].concat(W.ParleyQueue || [], (W.Parley && Array.isArray(W.Parley.q) && W.Parley.q) || []);
  api.q = { push: run };
  W.Parley = api;
  W.ParleyQueue = { push: run };
  W.setRoistatOnlineChatCustomParams = setCustomParams;
  early.forEach(run);

  // ---- small DOM helpers (text only; attributes set one by one)
  const h = (tag, props, ...kids) => {
    const e = D.createElement(tag);
    for (const k in props || {}) {
      const v = props[k];
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids) if (c != null) e.append(c);
    return e;
  };
  const icon = d => {
    const NS = 'http://www.w3.org/2000/svg', s = D.createElementNS(NS, 'svg'), p = D.createElementNS(NS, 'path');
    s.setAttribute('viewBox', '0 0 24 24'); s.setAttribute('aria-hidden', 'true'); s.setAttribute('focusable', 'false');
    p.setAttribute('d', d); s.append(p);
    return s;
  };
  const I_CHAT = 'M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8z';
  const I_X = 'M18 6 6 18M6 6l12 12';
  const I_CLIP = 'm21.4 11-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5';
  const I_SEND = 'M22 2 11 13M22 2l-7 20-4-9-9-4z';
  const I_FILE = 'M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6';
  const httpUrl = s => { try { const u = new URL(s, ORIGIN + '/'); return /^https?:$/.test(u.protocol) ? u.href : null; } catch { return null; } };

  const CSS = `
:host{all:initial!important;display:block!important;position:fixed!important;right:0!important;bottom:0!important;width:0!important;height:0!important;z-index:2147483000!important}
*{box-sizing:border-box}[hidden]{display:none!important}
.w{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#111827;-webkit-font-smoothing:antialiased}
button{font:inherit;color:inherit;cursor:pointer;border:0;background:none;padding:0;margin:0}
svg{width:22px;height:22px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
:focus-visible{outline:3px solid #4f46e5;outline-offset:2px}
a{color:#4338ca}
.la{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;background:#4f46e5;color:#fff;display:grid;place-items:center;box-shadow:0 6px 20px rgba(17,24,39,.28);transition:transform .15s,background .15s}
.la:hover{background:#4338ca;transform:scale(1.06)}
.la:focus-visible{outline:none;box-shadow:0 0 0 3px #fff,0 0 0 6px #4f46e5}
.la svg{width:28px;height:28px}
.dot{position:absolute;top:3px;right:3px;width:14px;height:14px;border-radius:50%;background:#ef4444;border:2px solid #fff}
.p{position:fixed;right:20px;bottom:92px;width:360px;height:600px;max-height:calc(100vh - 112px);max-height:calc(100dvh - 112px);background:#fff;border-radius:16px;box-shadow:0 12px 40px rgba(17,24,39,.3);display:flex;flex-direction:column;overflow:hidden;animation:pop .18s ease-out}
@keyframes pop{from{opacity:0;transform:translateY(12px) scale(.98)}}
.hd{background:#4f46e5;color:#fff;padding:14px 10px 14px 18px;display:flex;align-items:center;gap:8px}
.hd :focus-visible{outline-color:#fff}
h2{margin:0;font-size:16px;font-weight:600;line-height:1.3}
.hd p{margin:2px 0 0;font-size:13px;opacity:.88}
.x{margin-left:auto;width:36px;height:36px;border-radius:8px;display:grid;place-items:center;flex:none}
.x:hover{background:rgba(255,255,255,.16)}
.cn{padding:6px 16px;font-size:13px;background:#fef3c7;color:#92400e}
.cn.ok{background:#dcfce7;color:#166534}
.sc{flex:1;overflow-y:auto;padding:16px 14px;background:#f9fafb;overscroll-behavior:contain}
.ls{display:flex;flex-direction:column;gap:10px}
.m{display:flex;gap:8px;max-width:86%;align-items:flex-end}
.me{align-self:flex-end;flex-direction:row-reverse}
.b{padding:8px 12px;border-radius:16px;background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap;overflow-wrap:anywhere;min-width:0}
.op .b{border-bottom-left-radius:4px}
.me .b{background:#4f46e5;border-color:#4f46e5;color:#fff;border-bottom-right-radius:4px}
.me a{color:#fff}
.who{font-size:12px;font-weight:600;color:#4b5563;margin-bottom:2px}
.mt{font-size:11px;opacity:.72;margin-top:3px;text-align:right;white-space:nowrap}
.mt span+span::before{content:" · "}
.tm:empty{display:none}.tm:empty+span::before{content:none}
.m[data-status=pending] .b{opacity:.72}
.me[data-status=sent]:has(~.me) .st{display:none}
.me[data-status=read]:has(~.me) .st{display:none}
.m[data-kind=greeting]:has(.b:empty){display:none}
.ty{font-size:13px;color:#6b7280;font-style:italic;padding:4px 16px 0;background:#f9fafb}
.rt{align-self:stretch;display:grid;gap:8px;padding:12px;border:1px solid #e5e7eb;border-radius:12px;background:#fff}
.rt h3{margin:0;font-size:14px;font-weight:600}.rs{display:flex;gap:4px}
.rs button{font-size:26px;line-height:1;color:#d1d5db;padding:2px}.rs button[aria-pressed=true]{color:#f59e0b}
.rt textarea{min-height:56px;font-size:14px}.rt .cb .sd{color:#fff}
.m[data-status=failed] .b{background:#fee2e2;border-color:#fecaca;color:#7f1d1d}
.av{width:30px;height:30px;border-radius:50%;flex:none;object-fit:cover;background:#e0e7ff;color:#3730a3;display:grid;place-items:center;font-size:13px;font-weight:600}
.f{display:flex;align-items:center;gap:6px;text-decoration:none;color:inherit}
.f svg{width:18px;height:18px;flex:none}
.fn{text-decoration:underline;overflow-wrap:anywhere}.fs{opacity:.75;font-size:12px;white-space:nowrap}
progress{display:block;width:100%;height:4px;margin-top:6px;accent-color:#a5b4fc}
.n{align-self:center;text-align:center;font-size:13px;color:#6b7280;max-width:90%;white-space:pre-wrap}
.n.er{color:#b91c1c}.n.ok{color:#166534}
.wt{margin-top:10px}
.fm{display:flex;align-items:flex-end;gap:4px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}
textarea{flex:1;min-width:0;resize:none;border:1px solid #d1d5db;border-radius:12px;padding:9px 12px;font:inherit;line-height:1.4;color:inherit;background:#fff;min-height:40px;max-height:120px;margin:0}
textarea::placeholder{color:#9ca3af}
textarea:focus,textarea:focus-visible{outline:none;border-color:#4f46e5;box-shadow:0 0 0 3px rgba(79,70,229,.25)}
.ib{width:40px;height:40px;border-radius:10px;display:grid;place-items:center;color:#4f46e5;flex:none}
.ib:hover{background:#eef2ff}
.sd{background:#4f46e5;color:#fff}.sd:hover{background:#4338ca}
.sd svg{width:20px;height:20px}
.cl{display:block;margin:0 10px;padding:6px 4px 0;font-size:13px;color:#4338ca;text-decoration:underline}
.cf,.of,.tf{display:grid;gap:6px;padding:10px 12px;border-top:1px solid #e5e7eb;background:#fff}
.cf h3,.of h3{margin:0;font-size:14px;font-weight:600}
.cf label,.of label,.tf label{display:grid;gap:2px;font-size:12px;color:#4b5563}
.cf input,.of input,.tf input{font:inherit;font-size:14px;padding:6px 10px;border:1px solid #d1d5db;border-radius:8px;color:inherit;background:#fff}
.cf input:focus,.of input:focus,.tf input:focus{outline:none;border-color:#4f46e5;box-shadow:0 0 0 3px rgba(79,70,229,.25)}
.cf input[aria-invalid=true],.of [aria-invalid=true]{border-color:#dc2626}
.ce{font-size:12px;color:#b91c1c}.ce:empty,.pn:empty{display:none}.pn{font-size:11px;color:#6b7280}
.cb{display:flex;gap:8px;justify-content:flex-end}.cb button{padding:6px 14px;border-radius:8px}
.cb .sd{color:#fff}.cb button:disabled{opacity:.6;cursor:default}
.of{flex:1;overflow-y:auto;border-top:0;align-content:start}.of p{margin:0;font-size:13px;color:#4b5563}.of textarea{flex:none;min-height:90px;max-height:none;font-size:14px}
@media (max-width:480px){.p{inset:0;width:auto;height:auto;max-height:none;border-radius:0}.open .la{display:none}textarea{font-size:16px}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}`;

  // Offline-form texts the project's settings may not have yet (ru/en defaults).
  const OFF = {
    en: { offline_message_label: 'Message', offline_contact_required: 'Leave a phone or an email so that we can answer.',
      offline_opens_at: 'We open at {time}', offline_text_required: 'Write your message.',
      status_read: 'Read', rating_prompt: 'How did we do?', rating_comment_placeholder: 'Anything to add? (optional)',
      rating_submit_label: 'Send rating', rating_thanks: 'Thank you for your rating!' },
    ru: { offline_message_label: 'Сообщение', offline_contact_required: 'Оставьте телефон или почту, чтобы мы могли ответить.',
      offline_opens_at: 'Откроемся {time}', offline_text_required: 'Напишите сообщение.',
      status_read: 'Прочитано', rating_prompt: 'Как мы справились?', rating_comment_placeholder: 'Хотите что-то добавить? (необязательно)',
      rating_submit_label: 'Отправить оценку', rating_thanks: 'Спасибо за оценку!' },
  };
  const t = (k, name) => String(T[k] || (OFF[lang] || OFF.en)[k] || '').split('{name}').join(name || '');
  const sleep = ms => new Promise(r => setTimeout(r, ms));

  // ---- texts the project's settings may change while the page is open: each element that
  // shows one is registered with where the text goes, and a `texts` frame re-applies them.
  const labels = [];
  const put = (el, where, key) => { const v = t(key); if (where === 'text') el.textContent = v; else el.setAttribute(where, v); };
  function L(el, ...pairs) { // L(el, 'aria-label', 'send_label', 'title', 'send_label')
    for (let i = 0; i < pairs.length; i += 2) { labels.push([el, pairs[i], pairs[i + 1]]); put(el, pairs[i], pairs[i + 1]); }
    return el;
  }
  const span = key => L(h('span'), 'text', key);
  function retext(m) {
    if (!m.texts || typeof m.texts !== 'object' || typeof m.language !== 'string') return;
    T = m.texts; lang = m.language;
    for (const [el, where, key] of labels) put(el, where, key);
    for (const el of [host, ui.w]) if (lang) el.setAttribute('lang', lang);
    mode();
  }

  // ---- building the widget
  function build() {
    host = h('parley-widget', { id: 'parley-widget', 'data-state': 'closed', lang: lang || null });
    const root = host.attachShadow({ mode: 'open' });
    root.append(h('style', null, CSS));
    ui.la = L(h('button', { class: 'la', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'parley-panel',
      onclick: () => setOpen(!isOpen) }, icon(I_CHAT)), 'aria-label', 'launcher_label', 'title', 'launcher_label');
    ui.dot = h('span', { class: 'dot', hidden: true });
    ui.la.append(ui.dot);
    ui.ls = h('div', { class: 'ls' });
    ui.wait = h('div', { class: 'n wt', hidden: true }, t('waiting_for_operator'));
    ui.sc = L(h('div', { class: 'sc', role: 'log', 'aria-live': 'polite' }, ui.ls, ui.wait), 'aria-label', 'window_title');
    ui.cn = h('div', { class: 'cn', role: 'status', hidden: true });
    ui.ta = L(h('textarea', { rows: 1, maxlength: MAX_TEXT,
      oninput: () => { grow(); typingNow(); }, onkeydown: e => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); submit(); }
      } }), 'placeholder', 'input_placeholder', 'aria-label', 'input_placeholder');
    ui.file = h('input', { type: 'file', hidden: true, tabindex: -1, 'aria-hidden': 'true', onchange: () => {
      const f = ui.file.files && ui.file.files[0]; ui.file.value = ''; if (f) attach(f);
    } });
    const title = L(h('h2', { id: 'parley-title' }), 'text', 'window_title');
    ui.p = h('div', { class: 'p', id: 'parley-panel', role: 'dialog', 'aria-labelledby': 'parley-title', hidden: true,
      onkeydown: e => { if (e.key === 'Escape') { e.stopPropagation(); setOpen(false); } } },
    h('div', { class: 'hd' }, h('div', null, title, ui.sub = h('p', null, t('online_subtitle'))),
      L(h('button', { class: 'x', type: 'button', onclick: () => setOpen(false) }, icon(I_X)), 'aria-label', 'close_label', 'title', 'close_label')),
    ui.cn, ui.sc, ui.ty = h('div', { class: 'ty', role: 'status', hidden: true }), ui.cbox = contactForm(),
    ui.fm = h('form', { class: 'fm', onsubmit: e => { e.preventDefault(); submit(); } },
      L(h('button', { class: 'ib', type: 'button', onclick: () => ui.file.click() }, icon(I_CLIP)), 'aria-label', 'attach_label', 'title', 'attach_label'),
      ui.file, ui.ta,
      L(h('button', { class: 'ib sd', type: 'submit' }, icon(I_SEND)), 'aria-label', 'send_label', 'title', 'send_label')),
    offlineForm()); // after the composer: the first textarea in the widget stays the chat's
    ui.w = h('div', { class: 'w', lang: lang || null }, ui.p, ui.la);
    root.append(ui.w);
    ui.ls.append(h('div', { class: 'm op', 'data-kind': 'greeting' }, L(h('div', { class: 'b' }), 'text', 'greeting')));
    D.body.append(host);
    mode();
  }

  // ---- the offline form: {type:'offline_message'} answered by offline_saved or an error with its id
  const of = { id: null, sent: null };
  function offlineForm() {
    const input = (k, type, ac) => h('input', { type, name: k, autocomplete: ac, maxlength: 200, oninput: clearBad });
    const clearBad = () => { for (const k in ui.of) ui.of[k].removeAttribute('aria-invalid'); ui.oe.textContent = ''; };
    ui.of = { name: input('name', 'text', 'name'), phone: input('phone', 'tel', 'tel'), email: input('email', 'email', 'email'),
      text: h('textarea', { name: 'text', rows: 4, maxlength: MAX_TEXT, oninput: clearBad }) };
    ui.oe = h('div', { class: 'ce', role: 'alert' });
    ui.on = h('p', { class: 'on' });
    ui.os = L(h('button', { class: 'sd', type: 'submit' }), 'text', 'contact_submit_label');
    ui.oform = L(h('form', { class: 'of', hidden: true, novalidate: true, onsubmit: e => { e.preventDefault(); leaveMessage(); } },
      L(h('h3'), 'text', 'contact_form_title'), ui.on,
      ...['name', 'phone', 'email'].map(k => h('label', null, span(k + '_label'), ui.of[k])),
      h('label', null, span('offline_message_label'), ui.of.text),
      ui.oe, L(h('div', { class: 'pn' }), 'text', 'privacy_note'), h('div', { class: 'cb' }, ui.os)), 'aria-label', 'offline_subtitle');
    return ui.oform;
  }
  function badOff(k, text) { if (ui.of[k]) { ui.of[k].setAttribute('aria-invalid', 'true'); ui.of[k].focus(); } ui.oe.textContent = text; }
  function leaveMessage() {
    const v = k => ui.of[k].value.trim() || null;
    const m = { type: 'offline_message', id: uuid(), name: v('name'), phone: v('phone'), email: v('email'), text: v('text'), page_url: location.href };
    if (m.phone && !(m.phone = phone(m.phone))) return badOff('phone', t('contact_invalid_phone'));
    if (m.email && !EMAIL.test(m.email)) return badOff('email', t('contact_invalid_email'));
    if (!m.phone && !m.email) return badOff('phone', t('offline_contact_required'));
    if (!m.text) return badOff('text', t('offline_text_required'));
    of.id = m.id; of.sent = m; ui.os.disabled = true;
    store.set('offline', JSON.stringify(m)); // kept until stored: resent after a reconnect or a reload
    if (connected) send(m); else connect();
  }
  function offlineAnswer(m) {
    if (m.type === 'offline_saved') {
      of.id = of.sent = null; ui.os.disabled = false; store.set('offline', ''); contactsGiven = true;
      for (const k in ui.of) ui.of[k].value = '';
      if (m.conversation_id && m.conversation_id !== convId) newConversation(m.conversation_id);
      convClosed = false; hasVisitor = true;
      mode();
      return mutate(() => ui.ls.append(notice(t('contact_thanks'), 'offline_saved', 'ok')), true);
    }
    if (RETRYABLE.includes(m.code)) return setTimeout(() => { if (of.sent) send(of.sent); }, 2000);
    of.id = of.sent = null; ui.os.disabled = false; store.set('offline', '');
    const k = { phone_invalid: 'phone', email_invalid: 'email', name_invalid: 'name', contact_required: 'phone', text_empty: 'text', text_too_long: 'text' }[m.code] || 'text';
    badOff(k, k === 'phone' && m.code === 'phone_invalid' ? t('contact_invalid_phone') : k === 'email' ? t('contact_invalid_email') : String(m.message || m.code || ''));
  }
  function forget() { // another person in this browser: nothing of the previous one stays, nor is sent as theirs
    writeOutbox([]); store.set('offline', ''); store.set('unanswered', '');
    if (!ui.ls) return; // a reset queued before the widget is drawn: nothing on screen or in flight yet
    lastSeq = 0; convId = null; convClosed = false; inFlight = null;
    ui.ls.querySelectorAll('[data-seq], [data-status]').forEach(e => e.remove());
    byId.clear();
    if (ui.rate) { ui.rate.remove(); ui.rate = null; }
  }
  function newConversation(id) { // seqs start again at 1: the closed conversation's transcript goes
    convId = id; lastSeq = 0; joined = false; readSent = 0; unanswered = false;
    ui.ls.querySelectorAll('[data-seq]').forEach(e => e.remove());
    if (ui.rate) { ui.rate.remove(); ui.rate = null; }
  }
  // Chat or offline form, as availability says; typed text goes along to whichever is shown.
  function mode() {
    if (!ui.p) return;
    const off = !avail.open && (!convId || convClosed), was = ui.p.getAttribute('data-mode');
    ui.p.setAttribute('data-mode', off ? 'offline' : 'chat');
    host.setAttribute('data-mode', off ? 'offline' : 'chat');
    ui.oform.hidden = !off; ui.sc.hidden = ui.fm.hidden = ui.cbox.hidden = off;
    // A conversation going on outside hours (or with nobody online) is not promised a quick
    // answer: the header says so unless an operator is already in it.
    ui.sub.textContent = t(off || ((!avail.open || unanswered) && !joined) ? 'offline_subtitle' : 'online_subtitle');
    ui.on.textContent = opensAt();
    ui.tl.hidden = !convId; // "Email me this conversation": once there is one
    waiting();
    if (off && was !== 'offline' && ui.ta.value.trim()) { ui.of.text.value = [ui.of.text.value.trim(), ui.ta.value.trim()].filter(Boolean).join('\n'); ui.ta.value = ''; grow(); }
    else if (!off && was === 'offline' && ui.of.text.value.trim() && !ui.ta.value.trim() && !of.sent) { ui.ta.value = ui.of.text.value.trim(); ui.of.text.value = ''; grow(); }
  }
  // "We open at Sun, 13 Dec, 09:00 GMT+3": in the visitor's own clock, with its zone named.
  function opensAt() {
    const d = avail.next ? new Date(avail.next) : null;
    if (!d || isNaN(d)) return '';
    let when;
    try { when = d.toLocaleString(lang || undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' }); }
    catch { when = d.toLocaleString(); }
    return t('offline_opens_at').split('{time}').join(when);
  }
  function nobodyAnswered() {
    unanswered = true; store.set('unanswered', convId);
    if (!contactsGiven && ui.cform.hidden && !convClosed) { ui.cform.hidden = false; ui.cl.setAttribute('aria-expanded', 'true'); }
    mode();
  }
  function toOffline(text, next) { // a refused start: the form takes over, with the text kept
    avail = { open: false, next: next || avail.next }; convClosed = true;
    mode();
    if (text) ui.of.text.value = [ui.of.text.value.trim(), text].filter(Boolean).join('\n');
    if (isOpen) (ui.of.phone.value || ui.of.email.value ? ui.of.text : ui.of.name).focus({ preventScroll: true });
  }

  // ---- the contact form: {type:'contacts'} answered by contacts_saved or an error with its id
  const cf = { id: null, sent: null };
  const PHONE_NOISE = /[\s\-().\u00a0]/g, EMAIL = /^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$/;
  // The server's rule (docs/visitor-protocol.md): E.164 where certain, else the digits as given; null if no phone.
  function phone(v) {
    let s = v.replace(PHONE_NOISE, ''), plus = s[0] === '+';
    if (plus) s = s.slice(1); else if (s.startsWith('00')) { plus = true; s = s.slice(2); }
    if (!/^[0-9]{5,15}$/.test(s)) return null;
    if (plus) return '+' + s;
    if (s.length === 11 && /^[78]/.test(s)) return '+7' + s.slice(1);
    return s.length === 10 && s[0] === '9' ? '+7' + s : s;
  }
  function contactForm() {
    const input = (k, type, ac) => h('input', { type, name: k, autocomplete: ac, maxlength: 200,
      oninput: () => { ui.cf[k].removeAttribute('aria-invalid'); ui.ce.textContent = ''; } });
    ui.cf = { name: input('name', 'text', 'name'), phone: input('phone', 'tel', 'tel'), email: input('email', 'email', 'email') };
    ui.ce = h('div', { class: 'ce', role: 'alert' });
    ui.cs = L(h('button', { class: 'sd', type: 'submit' }), 'text', 'contact_submit_label');
    ui.cform = L(h('form', { class: 'cf', hidden: true, novalidate: true, onsubmit: e => { e.preventDefault(); giveContacts(); } },
      L(h('h3'), 'text', 'contact_form_title'),
      ...['name', 'phone', 'email'].map(k => h('label', null, span(k + '_label'), ui.cf[k])),
      ui.ce, L(h('div', { class: 'pn' }), 'text', 'privacy_note'),
      h('div', { class: 'cb' }, L(h('button', { type: 'button', onclick: () => showForm(false) }), 'text', 'contact_cancel_label'), ui.cs)),
    'aria-label', 'contact_form_title');
    ui.cl = L(h('button', { class: 'cl', type: 'button', 'aria-expanded': 'false', onclick: () => showForm(ui.cform.hidden) }),
      'text', 'contact_open_label');
    return h('div', null, ui.cl, ui.cform, transcriptForm());
  }
  // "Email me this conversation": {type:'email_transcript', id, email}, answered by
  // transcript_requested or an error with its id; shown once the visitor has a conversation.
  const tr = { id: null };
  function transcriptForm() {
    ui.te = h('input', { type: 'email', name: 'email', autocomplete: 'email', maxlength: 200, required: true });
    ui.ter = h('div', { class: 'ce', role: 'alert' });
    ui.tsend = L(h('button', { class: 'sd', type: 'submit' }), 'text', 'transcript_submit_label');
    ui.tform = h('form', { class: 'tf', hidden: true, novalidate: true, onsubmit: e => {
      e.preventDefault();
      const email = ui.te.value.trim();
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) { ui.ter.textContent = t('contact_invalid_email'); ui.te.focus(); return; }
      tr.id = uuid(); tr.email = email; ui.tsend.disabled = true; ui.ter.textContent = '';
      send({ type: 'email_transcript', id: tr.id, email });
    } }, h('label', null, span('email_label'), ui.te), ui.ter, h('div', { class: 'cb' }, ui.tsend));
    ui.tl = L(h('button', { class: 'cl', type: 'button', hidden: true, 'aria-expanded': 'false', onclick: () => {
      ui.tform.hidden = !ui.tform.hidden; ui.tl.setAttribute('aria-expanded', String(!ui.tform.hidden));
      if (!ui.tform.hidden) { if (!ui.te.value && cf.sent && cf.sent.email) ui.te.value = cf.sent.email; ui.te.focus(); }
    } }), 'text', 'transcript_open_label');
    return h('div', null, ui.tl, ui.tform);
  }
  function transcriptAnswer(m) {
    ui.tsend.disabled = false;
    if (m.type === 'transcript_requested') {
      ui.tform.hidden = true; ui.tl.setAttribute('aria-expanded', 'false');
      localNotice(t('transcript_sent', tr.email), 'ok'); // the one placeholder texts have, {name}, is the address here
    } else if (!RETRYABLE.includes(m.code)) ui.ter.textContent = String(m.message || m.code || '');
    tr.id = null;
  }
  function showForm(o) {
    ui.cform.hidden = !o; ui.cl.setAttribute('aria-expanded', String(o));
    if (o) ui.cf.name.focus(); else ui.ta.focus({ preventScroll: true });
  }
  function bad(k, text) { ui.cf[k].setAttribute('aria-invalid', 'true'); ui.cf[k].focus(); ui.ce.textContent = text; }
  function giveContacts() {
    const v = k => ui.cf[k].value.trim() || null, m = { type: 'contacts', id: uuid(), name: v('name'), phone: v('phone'), email: v('email'), page_url: location.href };
    if (m.phone && !(m.phone = phone(m.phone))) return bad('phone', t('contact_invalid_phone'));
    if (m.email && !EMAIL.test(m.email)) return bad('email', t('contact_invalid_email'));
    if (!m.name && !m.phone && !m.email) return bad('name', '');
    cf.id = m.id; cf.sent = m; ui.cs.disabled = true;
    if (connected) send(m); else connect(); // sent on hello
  }
  function contactsAnswer(m) {
    if (m.type === 'contacts_saved') {
      cf.id = cf.sent = null; ui.cs.disabled = false; contactsGiven = true;
      for (const k in ui.cf) ui.cf[k].value = '';
      showForm(false);
      return mutate(() => ui.ls.append(notice(t('contact_thanks'), 'contacts_saved', 'ok')), true);
    }
    if (RETRYABLE.includes(m.code)) return setTimeout(() => { if (cf.sent) send(cf.sent); }, 2000);
    cf.id = cf.sent = null; ui.cs.disabled = false;
    const k = { phone_invalid: 'phone', email_invalid: 'email', name_invalid: 'name' }[m.code] || 'name';
    bad(k, k === 'phone' || k === 'email' ? t(`contact_invalid_${k}`) : String(m.message || m.code || ''));
  }

  function setOpen(o, quiet) { // quiet: opened by an invitation, the page keeps its focus
    isOpen = o;
    host.setAttribute('data-state', o ? 'open' : 'closed');
    ui.w.classList.toggle('open', o);
    ui.p.hidden = !o;
    ui.la.setAttribute('aria-expanded', String(o));
    if (o) {
      ui.dot.hidden = true;
      connect();
      markRead();
      ui.sc.scrollTop = ui.sc.scrollHeight;
      if (!quiet) ui.ta.focus({ preventScroll: true });
    } else if (host.shadowRoot.activeElement) ui.la.focus();
  }

  function grow() { const a = ui.ta; a.style.height = 'auto'; a.style.height = Math.min(a.scrollHeight + 2, 120) + 'px'; }

  // Keeps the list scrolled to the bottom when it was there (or for the visitor's own message).
  function mutate(fn, force) {
    const s = ui.sc, near = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    fn();
    if (near || force) s.scrollTop = s.scrollHeight;
  }

  // Messages with a seq are kept in seq order; pending ones (no seq yet) stay at the end;
  // local notices are fixed points in time.
  function place(el, seq) {
    mutate(() => {
      el.remove();
      let c = ui.ls.lastElementChild;
      while (c) {
        const s = c.getAttribute('data-seq');
        if (s ? +s > seq : c.getAttribute('data-status') === 'pending') c = c.previousElementSibling;
        else break;
      }
      c ? c.after(el) : ui.ls.prepend(el);
    });
  }

  const notice = (text, kind, cls) => h('div', { class: 'n' + (cls ? ' ' + cls : ''), 'data-kind': kind }, text);
  const localNotice = (text, cls) => mutate(() => ui.ls.append(notice(text, 'notice', cls)), true);

  // Text with http(s) links made clickable; everything else stays plain text.
  function rich(text) {
    const f = D.createDocumentFragment();
    let i = 0;
    for (const m of text.matchAll(/\bhttps?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]]/g)) {
      f.append(text.slice(i, m.index), h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer nofollow' }, m[0]));
      i = m.index + m[0].length;
    }
    f.append(text.slice(i));
    return f;
  }

  function size(n) {
    if (!(n >= 0)) return '';
    const [v, u] = n < 1024 ? [n, 'byte'] : n < 1048576 ? [n / 1024, 'kilobyte'] : [n / 1048576, 'megabyte'];
    try { return new Intl.NumberFormat(lang || undefined, { style: 'unit', unit: u, unitDisplay: 'short', maximumFractionDigits: 1 }).format(v); } catch { return String(n); }
  }

  function fileEl(a) {
    if (!a || typeof a !== 'object') return null;
    const href = a.url ? httpUrl(a.url) : null;
    const el = h(href ? 'a' : 'span', { class: 'f', href, target: href && '_blank', rel: href && 'noopener noreferrer', download: href && (a.name || '') },
      icon(I_FILE), h('span', { class: 'fn' }, String(a.name || '')), h('span', { class: 'fs' }, size(a.size)));
    // The gateway's files need the visitor token, sent as a header (never in a URL that
    // proxies log): fetched, then saved from memory under the file's name.
    if (href && new URL(href).origin === ORIGIN) el.addEventListener('click', e => { e.preventDefault(); download(href, a.name); });
    return el;
  }
  async function download(href, name) {
    try {
      const r = await fetch(href, { credentials: 'omit', headers: token ? { 'X-Parley-Visitor-Token': token } : {} });
      if (!r.ok) throw new Error('download ' + r.status);
      const url = URL.createObjectURL(await r.blob());
      const a = h('a', { href: url, download: String(name || 'file') });
      D.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) { warn('the file could not be downloaded: ' + e.message); }
  }

  function avatar(op) {
    const name = String((op && op.name) || '').trim();
    const ini = h('span', { class: 'av', 'aria-hidden': 'true' }, name.charAt(0).toUpperCase());
    const url = op && op.avatar_url ? httpUrl(op.avatar_url) : null;
    if (!url) return ini;
    const img = h('img', { class: 'av', src: url, alt: '' });
    img.onerror = () => img.replaceWith(ini);
    return img;
  }

  function clock(at) {
    const d = at ? new Date(at) : null;
    return d && !isNaN(d) ? d.toLocaleTimeString(lang || undefined, { hour: '2-digit', minute: '2-digit' }) : '';
  }

  // One message element: .m[data-kind][data-id][data-seq][data-status] > (avatar) .b > who, .tx, file, progress, .mt
  function bubble(kind, id, op) {
    const mine = kind === 'visitor_message';
    const b = h('div', { class: 'b' }, op ? h('div', { class: 'who' }, String(op.name || '')) : null,
      h('div', { class: 'tx' }), h('div', { class: 'at' }), h('div', { class: 'mt' }, h('span', { class: 'tm' }), mine ? h('span', { class: 'st' }) : null));
    return h('div', { class: 'm ' + (mine ? 'me' : 'op'), 'data-kind': kind, 'data-id': id || '' }, mine ? null : avatar(op), b);
  }
  function fill(el, m) {
    const tx = el.querySelector('.tx'), at = el.querySelector('.at');
    if (typeof m.text === 'string') { tx.replaceChildren(rich(m.text)); tx.hidden = !m.text; }
    if (m.attachment !== undefined) { const f = fileEl(m.attachment); at.replaceChildren(...(f ? [f] : [])); at.hidden = !f; }
    if (m.at) el.querySelector('.tm').textContent = clock(m.at);
  }
  function status(el, s, text) {
    if (s) el.setAttribute('data-status', s);
    const st = el.querySelector('.st');
    if (st) st.textContent = text;
  }

  function pending(e, file) {
    const el = bubble('visitor_message', e.id);
    fill(el, { text: e.text || '', attachment: file || null });
    status(el, 'pending', '…');
    byId.set(e.id, el);
    mutate(() => ui.ls.append(el), true);
    hasVisitor = true; waiting();
    return el;
  }
  // A message still not acknowledged after a while says so (it keeps being resent).
  const watch = el => setTimeout(() => { if (el.getAttribute('data-status') === 'pending') status(el, '', t('send_failed_retrying')); }, 6000);

  // "Waiting for an operator" under the conversation until one joins (debounced: history arrives in a burst).
  // What it says is what will happen: a quick answer only while someone is online within
  // working hours and the conversation has not gone unanswered.
  function waiting() {
    clearTimeout(waitTimer);
    const kind = unanswered ? 'unanswered' : !avail.open ? 'closed' : 'open';
    waitTimer = setTimeout(() => mutate(() => {
      const text = kind === 'unanswered' ? t('waiting_unanswered') : kind === 'closed'
        ? [t('waiting_while_closed'), opensAt()].filter(Boolean).join(' ') : t('waiting_for_operator');
      ui.wait.textContent = text; ui.wait.setAttribute('data-waiting', kind);
      ui.wait.hidden = !(hasVisitor && !joined) || !text;
    }, kind === 'unanswered'), 400);   // in view: the form that opens with it must not hide it
  }

  // ---- sending
  function submit() {
    const text = ui.ta.value.trim().slice(0, MAX_TEXT);
    if (!text) return;
    ui.ta.value = ''; grow();
    enqueue({ id: uuid(), text, page_url: location.href, attachment: null });
  }

  function enqueue(e, el) {
    el = el || pending(e);
    watch(el);
    const ob = readOutbox(); ob.push(e); writeOutbox(ob); // stored before it is sent
    if (connected) pump(); else connect();
  }

  // One message in flight at a time, in outbox order: a retried send never overtakes.
  let inFlight = null, pumpTimer = 0, retryDelay = 1000;
  const RETRYABLE = ['rate_limited', 'service_unavailable', 'busy'];
  function pump() {
    clearTimeout(pumpTimer); pumpTimer = 0;
    if (!connected || inFlight) return;
    const next = readOutbox()[0];
    if (!next) return;
    inFlight = next.id;
    sendMessage(next);
  }

  function sendMessage(e) {
    const m = { type: 'message', id: e.id, text: e.text || '', page_url: e.page_url || location.href };
    if (e.attachment) m.attachment = e.attachment;
    send(m);
  }
  function send(m) { if (connected && ws && ws.readyState === 1) ws.send(JSON.stringify(m)); }

  async function attach(file) {
    if (file.size > MAX_FILE) { localNotice(t('file_too_large'), 'er'); return; }
    const id = uuid();
    const el = pending({ id, text: '' }, { name: file.name, size: file.size });
    const bar = h('progress', { max: 1, value: 0, 'aria-label': t('attach_label') });
    el.querySelector('.at').append(bar);
    for (let n = 0; ; n++) {
      try {
        if (!token || needSession) await session();
        const r = await upload(file, bar);
        bar.remove();
        enqueue({ id, text: '', page_url: location.href, attachment: r.file_id }, el);
        return;
      } catch (err) {
        const st = err.status || 0, code = String((err.body && err.body.error && err.body.error.code) || '');
        const msg = st === 413 || /too_large|too_big/.test(code) ? t('file_too_large')
          : st === 415 || /type/.test(code) ? t('file_type_not_allowed')
          : st >= 400 && st < 500 && ![401, 408, 429].includes(st) ? String((err.body && err.body.error && err.body.error.message) || st) : null;
        if (st === 401) needSession = true;
        if (msg) { bar.remove(); byId.delete(id); status(el, 'failed', msg); return; }
        status(el, '', t('send_failed_retrying')); // network or server trouble: try again
        await sleep(Math.min(10000, 1000 * 2 ** n));
      }
    }
  }

  function upload(file, bar) {
    return new Promise((ok, no) => {
      const x = new XMLHttpRequest();
      x.open('POST', `${ORIGIN}/api/visitor/attachments`);
      x.setRequestHeader('X-Parley-Visitor-Token', token);
      x.setRequestHeader('X-File-Name', encodeURIComponent(file.name));
      x.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
      x.upload.onprogress = e => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
      x.onload = () => {
        let j = null; try { j = JSON.parse(x.responseText); } catch { /* not JSON */ }
        if (x.status >= 200 && x.status < 300 && j && j.file_id) ok(j);
        else no(Object.assign(new Error('upload failed'), { status: x.status, body: j }));
      };
      x.onerror = x.ontimeout = () => no(new Error('network'));
      x.send(file);
    });
  }

  // ---- identity and the socket
  async function session() {
    const gen = sessionGen;
    const r = await fetch(`${ORIGIN}/api/visitor/session`, {
      method: 'POST', credentials: 'omit', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ project: PROJECT, ...(token ? { visitor_token: token } : {}), ...(identity ? { identity } : {}) }),
    });
    if (!r.ok) throw new Error('session ' + r.status);
    const j = await r.json();
    if (!j || typeof j.visitor_token !== 'string') throw new Error('session: no token');
    if (gen !== sessionGen) return;
    if (identity && j.verified === false) warn(`identify: not verified (${j.reason || 'hash_invalid'}); the visitor stays anonymous`);
    // A new visitor (not a verified visitor's renewed token): the old transcript is not theirs.
    const was = store.get('visitor');   // (empty in storage written before visitor ids were kept)
    if (token && (was ? j.visitor_id !== was : j.visitor_token !== token)) forget();
    token = j.visitor_token;
    store.set('token', token);
    store.set('visitor', j.visitor_id || '');
    needSession = false;
  }

  function connect() { want = true; if (!ws && !timer && !opening) open(); }

  async function open() {
    opening = true;
    try { while (needSession || !token) await session(); } catch (e) { opening = false; lost(); retry(); return; }
    opening = false;
    const u = new URL('/ws/visitor', ORIGIN);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('after', String(lastSeq));
    let s;
    // The token rides as a subprotocol (a browser cannot set headers on a WebSocket), not in the URL.
    try { s = new WebSocket(u.href, ['parley.v1', 'parley.token.' + token]); } catch { lost(); retry(); return; }
    ws = s;
    let greeted = false;
    s.onmessage = e => {
      if (ws !== s) return;
      let m; try { m = JSON.parse(e.data); } catch { return; }
      if (!m || typeof m !== 'object') return;
      if (m.type === 'hello') greeted = true;
      receive(m);
    };
    s.onclose = () => {
      if (ws !== s) return;
      ws = null; connected = false; inFlight = null;
      if (!greeted) needSession = true; // refused (bad token?): ask for the session again first
      lost(); retry();
    };
  }

  function retry() {
    if (timer || !want) return;
    const base = Math.min(10000, 500 * 2 ** attempt++);
    timer = setTimeout(() => { timer = 0; open(); }, base / 2 + Math.random() * base / 2);
  }
  W.addEventListener('online', () => {
    if (timer && !ws) { clearTimeout(timer); timer = 0; attempt = 0; open(); }
  });

  function lost() {
    conn('reconnecting');
    ui.ls.querySelectorAll('[data-status=pending]').forEach(el => status(el, '', t('send_failed_retrying')));
  }
  function conn(kind) { // the bar above the conversation: reconnecting / reconnected
    clearTimeout(connTimer);
    const c = ui.cn;
    mutate(() => {
      c.hidden = !kind;
      if (kind) { c.setAttribute('data-notice', kind); c.className = 'cn' + (kind === 'reconnected' ? ' ok' : ''); c.textContent = t(kind); }
      else c.removeAttribute('data-notice');
    });
    if (kind === 'reconnected') connTimer = setTimeout(() => conn(null), 3000);
  }

  function receive(m) {
    if (m.type === 'hello') {
      connected = true; attempt = 0; helloAt = Date.now();
      if (m.conversation_id !== convId) { if (convId && m.conversation_id) newConversation(m.conversation_id); convId = m.conversation_id || null; convClosed = false; mode(); }
      if (of.sent) send(of.sent);
      unanswered = !!convId && store.get('unanswered') === convId; mode();
    if (ui.cn.getAttribute('data-notice') === 'reconnecting') conn('reconnected');
      if (paramsSet) send({ type: 'params', params: { ...params } });
      sendPage();
      if (cf.sent) send(cf.sent);
      for (const e of readOutbox()) { // resent in order, same ids, by pump()
        if (!byId.has(e.id)) pending(e);
        else { const el = byId.get(e.id); if (el.getAttribute('data-status') === 'pending') status(el, '', '…'); }
      }
      inFlight = null; pump();
    } else if (m.type === 'availability') { avail = { open: m.open !== false && m.online !== false, next: m.next_open_at || null }; mode(); }
    else if (m.type === 'conversation') { // the last one was closed: this message started the next
      if (m.conversation_id !== convId) newConversation(m.conversation_id);
      convClosed = false; mode();
      if (paramsSet) send({ type: 'params', params: { ...params } });
    }
    else if (m.id && m.id === of.id && (m.type === 'offline_saved' || m.type === 'error')) offlineAnswer(m);
    else if (m.id && m.id === cf.id && m.code === 'chat_closed') {
      for (const k of ['name', 'phone', 'email']) if (cf.sent && cf.sent[k]) ui.of[k].value = cf.sent[k];
      cf.id = cf.sent = null; ui.cs.disabled = false; showForm(false); toOffline('', m.next_open_at);
    } else if (m.id && m.id === cf.id && (m.type === 'contacts_saved' || m.type === 'error')) contactsAnswer(m);
    else if (m.type === 'event') event(m);
    else if (m.type === 'typing') showTyping(m.operator);
    else if (m.type === 'invitation') invited(m);
    else if (tr.id && m.id === tr.id && (m.type === 'transcript_requested' || m.type === 'error')) transcriptAnswer(m);
    else if (m.type === 'texts') retext(m);
    else if (m.type === 'unanswered') { if (m.conversation_id && m.conversation_id === convId) nobodyAnswered(); }
    else if (rt.id && m.id === rt.id && (m.type === 'rated' || m.type === 'error')) ratingAnswer(m);
    else if (m.type === 'ack') {
      if (typeof m.id !== 'string') return;
      if (!convId && typeof m.conversation_id === 'string') convId = m.conversation_id; // the first message started it
      unqueue(m.id);
      if (m.id === inFlight) { inFlight = null; retryDelay = 1000; pump(); }
      const el = byId.get(m.id);
      if (el && el.getAttribute('data-status') !== 'sent') {
        status(el, 'sent', t('status_sent'));
        if (m.seq != null && !el.hasAttribute('data-seq')) { el.setAttribute('data-seq', m.seq); place(el, +m.seq); }
      }
    } else if (m.type === 'error' && m.code === 'chat_closed' && m.id) { // nothing lost: the text moves to the form
      const e = readOutbox().find(x => x.id === m.id), el = byId.get(m.id);
      unqueue(m.id);
      if (el) { el.remove(); byId.delete(m.id); }
      if (m.id === inFlight) { inFlight = null; setTimeout(pump, 0); }
      hasVisitor = !!ui.ls.querySelector('.me'); waiting();
      toOffline(e && e.text, m.next_open_at);
    } else if (m.type === 'error') {
      const el = m.id && byId.get(m.id);
      const text = String(m.message || m.code || '');
      if (m.id && RETRYABLE.includes(m.code)) { // temporary: stays pending, resent after a pause
        if (el) status(el, '', t('send_failed_retrying'));
        if (m.id === inFlight) inFlight = null;
        // After retry_after (the server's hint) or our own backoff, with jitter (0.5-1.5x):
        // the many widgets a busy server refused at once do not all come back at once.
        const wait = Math.max(retryDelay, 1000 * (Number(m.retry_after) || 0));
        pumpTimer = setTimeout(pump, wait / 2 + Math.random() * wait); retryDelay = Math.min(retryDelay * 2, 15000);
        return;
      }
      if (m.id) unqueue(m.id); // refused for good: not resent
      if (m.id === inFlight) { inFlight = null; setTimeout(pump, 0); }
      if (el && el.getAttribute('data-status') === 'pending') status(el, 'failed', text);
      else if (m.id) localNotice(text, 'er');
      else warn('refused:', m.code, text); // params, contacts: the site's business, not the visitor's
    }
  }

  function event(m) {
    const seq = Number(m.seq);
    if (!(seq > lastSeq)) return; // already shown
    lastSeq = seq;
    const k = m.kind, op = m.operator && typeof m.operator === 'object' ? m.operator : null;
    let el;
    if (k === 'visitor_message') {
      el = typeof m.id === 'string' && byId.get(m.id);
      if (!el) { el = bubble(k, m.id); status(el, 'sent', t('status_sent')); if (m.id) byId.set(m.id, el); }
      hasVisitor = true;
    } else if (k === 'operator_message') {
      el = (typeof m.id === 'string' && byId.get(m.id)) || bubble(k, m.id, op || {}); // an invitation answered becomes its message
      el.setAttribute('data-kind', k);
      el.setAttribute('data-status', 'sent');
      joined = true;
    } else if (k === 'operator_joined') {
      el = notice(t('operator_joined', op && op.name), k);
      joined = true;
      mode(); // the header's promise follows who is in the chat
    } else if (k === 'closed') {
      el = notice(t('chat_closed'), k);
      hasVisitor = joined = false;
    } else if (k === 'read') { // an operator opened the conversation: "Read" under the visitor's messages
      ui.ls.querySelectorAll('.me[data-seq]').forEach(e => { if (+e.getAttribute('data-seq') <= +m.read_seq) status(e, 'read', t('status_read')); });
      return;
    } else if (k === 'rated') { rated(convId); return; }
    else return; // a kind this widget does not know yet
    const closedNow = k === 'closed' || (convClosed && k !== 'visitor_message' && k !== 'operator_message');
    if (closedNow !== convClosed) { convClosed = closedNow; mode(); }
    if (el.classList.contains('m')) fill(el, m);
    el.setAttribute('data-seq', seq);
    place(el, seq);
    waiting();
    if (k === 'operator_message') { ui.ty.hidden = true; markRead(); }
    if (k === 'closed') askRating(convId);
    if (!isOpen && (k === 'operator_message' || k === 'operator_joined') && Date.now() - helloAt > 1500) ui.dot.hidden = false;
  }

  // ---- typing and read state (ephemeral typing through the gateway; reads are stored)
  let typingAt = 0, typingTimer = 0, readSent = 0;
  function typingNow() { // at most one signal per 2 s, only into a conversation someone can see
    const now = Date.now();
    if (!connected || !convId || convClosed || !ui.ta.value.trim() || now - typingAt < 2000) return;
    typingAt = now; send({ type: 'typing' });
  }
  function showTyping(op) {
    ui.ty.textContent = t('typing', op && op.name ? String(op.name) : '').trim();
    ui.ty.hidden = !ui.ty.textContent;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { ui.ty.hidden = true; }, 4000);
  }
  function markRead() { // the visitor has seen the operators' messages up to lastSeq
    if (!connected || !isOpen || D.visibilityState === 'hidden' || lastSeq <= readSent || !ui.ls.querySelector('.op[data-seq]')) return;
    readSent = lastSeq; send({ type: 'read', seq: lastSeq });
  }
  D.addEventListener('visibilitychange', markRead);

  // ---- CSAT: once a conversation is closed, a 1-5 rating and an optional comment, once
  const rt = { id: null, cid: null, done: new Set() };
  function askRating(cid) {
    if (!cid || rt.done.has(cid) || ui.rate) return;
    let score = 0;
    const stars = [1, 2, 3, 4, 5].map(n => h('button', { type: 'button', 'aria-pressed': 'false', 'aria-label': `${n} / 5`, 'data-score': n,
      onclick: () => { score = n; stars.forEach((b, i) => b.setAttribute('aria-pressed', String(i < n))); ui.rsend.disabled = false; } }, '★'));
    ui.rcomment = h('textarea', { rows: 2, maxlength: 1000, placeholder: t('rating_comment_placeholder'), 'aria-label': t('rating_comment_placeholder') });
    ui.rerr = h('div', { class: 'ce', role: 'alert' });
    ui.rsend = h('button', { class: 'sd', type: 'submit', disabled: true }, t('rating_submit_label'));
    ui.rate = h('form', { class: 'rt', 'data-kind': 'rating', 'aria-label': t('rating_prompt'), onsubmit: e => {
      e.preventDefault();
      if (!score) return;
      rt.id = uuid(); rt.cid = cid; ui.rsend.disabled = true; ui.rerr.textContent = '';
      send({ type: 'rate', id: rt.id, conversation_id: cid, rating: score, comment: ui.rcomment.value.trim() || null });
    } }, h('h3', null, t('rating_prompt')), h('div', { class: 'rs', role: 'group', 'aria-label': t('rating_prompt') }, ...stars),
    ui.rcomment, ui.rerr, h('div', { class: 'cb' }, ui.rsend));
    mutate(() => ui.ls.append(ui.rate), true);
  }
  function rated(cid, thanks) { // asked once: whether rated here, in another tab, or before a reload
    if (cid) rt.done.add(cid);
    if (!ui.rate) return;
    const r = ui.rate; ui.rate = null;
    if (thanks) r.replaceWith(notice(t('rating_thanks'), 'rated', 'ok')); else r.remove();
  }
  function ratingAnswer(m) {
    const cid = rt.cid; rt.id = null;
    if (m.type === 'rated' || m.code === 'already_rated') return rated(cid, true);
    if (RETRYABLE.includes(m.code)) { if (ui.rsend) ui.rsend.disabled = false; return; }
    if (ui.rerr) { ui.rerr.textContent = String(m.message || m.code || ''); ui.rsend.disabled = false; }
  }

  // ---- the visit: where the visitor is on the site, for the operators' live list (and
  // invitations). Kept in this browser; a visit ends after 30 minutes without a page.
  const VISIT_IDLE = 30 * 60 * 1000;
  let visit = null;
  function pageView() { // a page load, or a single-page site's navigation
    const now = Date.now();
    let v = null;
    try { v = JSON.parse(store.get('visit') || 'null'); } catch { v = null; }
    if (!v || typeof v !== 'object' || !Array.isArray(v.pages) || !(now - v.last_at < VISIT_IDLE)) {
      v = { started_at: now, landing_url: location.href, referrer: D.referrer || null, pages_seen: 0, pages: [] };
    }
    if (!v.pages.length || v.pages[0].url !== location.href) {
      v.pages_seen = (+v.pages_seen || 0) + 1;
      v.pages = [{ url: location.href, title: String(D.title || '').slice(0, 200), at: now }, ...v.pages].slice(0, 5);
    }
    v.last_at = now;
    store.set('visit', JSON.stringify(v));
    visit = v;
    if (typeof v.trigger === 'string' && v.trigger) { params.parley_trigger = v.trigger; paramsSet = true; } // for the whole visit
    sendPage();
    armTriggers();
  }
  function sendPage() {
    if (visit) send({ type: 'page', url: location.href, title: String(D.title || '').slice(0, 200), referrer: visit.referrer,
      landing_url: visit.landing_url, started_at: visit.started_at, pages_seen: visit.pages_seen, pages: visit.pages });
  }
  // An operator's invitation (the gateway's `invitation` frame, again on every page until
  // answered): the widget opens with their words; the visitor's answer starts the chat with them.
  function invited(m) {
    if (typeof m.id !== 'string' || typeof m.text !== 'string' || byId.has(m.id) || (convId && !convClosed)) return;
    const el = bubble('operator_message', m.id, m.operator && typeof m.operator === 'object' ? m.operator : {});
    el.setAttribute('data-kind', 'invitation');
    fill(el, m);
    byId.set(m.id, el);
    mutate(() => ui.ls.append(el), true);
    if (!isOpen) setOpen(true, true);
  }

  // ---- proactive triggers (the project's enabled ones, with the config): after N seconds on
  // a matching page, with enough pages seen and the param asked for, the chat opens with the
  // trigger's message - once a day per visitor and trigger, within working hours with
  // someone online, never to a visitor who is chatting. An answer starts a conversation
  // marked with the custom param parley_trigger (the trigger's name).
  let triggers = [], triggerTimers = [];
  const today = () => new Date().toISOString().slice(0, 10);
  function pageMatches(pattern) { // a part of the URL; * stands for any characters
    if (!pattern) return true;
    if (!pattern.includes('*')) return location.href.includes(pattern);
    return new RegExp(pattern.split('*').map(p => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')).test(location.href);
  }
  function triggerWanted(tr) {
    return pageMatches(tr.page) && (visit ? +visit.pages_seen : 1) >= (+tr.min_pages || 1)
      && (!tr.param || params[tr.param.name] === tr.param.value) && store.get('trigger:' + tr.id) !== today();
  }
  function armTriggers() {
    triggerTimers.forEach(clearTimeout);
    triggerTimers = [];
    for (const tr of triggers) {
      if (!tr || typeof tr.id !== 'string' || !triggerWanted(tr)) continue;
      const href = location.href;
      triggerTimers.push(setTimeout(() => fire(tr, href), 1000 * Math.max(0, +tr.seconds || 0)));
    }
  }
  function fire(tr, href) {
    const text = tr.text && typeof tr.text === 'object' ? String(tr.text[lang] || tr.text.en || tr.text.ru || '') : '';
    if (!text || !ui.ls || location.href !== href || !triggerWanted(tr) || !avail.open || (convId && !convClosed)) return;
    store.set('trigger:' + tr.id, today());
    params.parley_trigger = String(tr.name || '').slice(0, 256);
    paramsSet = true;
    if (visit) { visit.trigger = params.parley_trigger; store.set('visit', JSON.stringify(visit)); }
    if (connected) send({ type: 'params', params: { ...params } });
    const el = bubble('operator_message', 'trigger-' + tr.id, null); // the project's voice, not an operator's
    el.setAttribute('data-kind', 'trigger');
    fill(el, { text });
    mutate(() => ui.ls.append(el), true);
    if (!isOpen) setOpen(true, true);
  }

  // ---- start: after DOMContentLoaded, when the browser is idle
  async function init() {
    let cfg;
    try {
      const r = await fetch(`${ORIGIN}/api/widget/config?project=${encodeURIComponent(PROJECT)}`, { credentials: 'omit' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      cfg = await r.json();
    } catch (e) { warn('widget config unavailable:', e.message || e); return; }
    if (!cfg || !cfg.enabled) return;
    T = cfg.texts && typeof cfg.texts === 'object' ? cfg.texts : {};
    triggers = Array.isArray(cfg.triggers) ? cfg.triggers : [];
    lang = typeof cfg.language === 'string' ? cfg.language : '';
    // "Online now" only when someone is online within working hours (presence); otherwise the offline form.
    avail = { open: cfg.open !== false && cfg.online !== false, next: cfg.next_open_at || null };
    build();
    const ob = readOutbox();
    ob.forEach(e => watch(pending(e)));
    try { const o = JSON.parse(store.get('offline') || 'null'); if (o && o.type === 'offline_message') { of.sent = o; of.id = o.id; ui.os.disabled = true; } } catch { /* none */ }
    // Every visitor connects: operators see who is on the site now (and may invite them);
    // a returning visitor gets their history and live replies.
    pageView();
    connect();
    W.addEventListener('popstate', pageView);
    W.addEventListener('hashchange', pageView);
    setInterval(() => { if (visit && visit.pages[0] && visit.pages[0].url !== location.href) pageView(); }, 1000); // pushState
  }
  const boot = () => (W.requestIdleCallback ? W.requestIdleCallback(init, { timeout: 2000 }) : setTimeout(init, 1));
  if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', boot, { once: true }); else boot();
})();
