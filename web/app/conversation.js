// The conversation view: transcript, composer (reply / internal note, attachment, quick
// replies), actions (take, status, assign, send to CRM and the handoff's outcome) and the
// side panel (contacts, the returning client's card, page, params).
import { api, upload, fileNameHeader, ApiError } from './api.js';
import { h, clear, safeLink, avatar, uuid, formatSize, trapFocus, icon } from './dom.js';
import { t, statusLabel, formatTime, formatDateTime, waitingFor } from './i18n.js';
import { store, subscribe, putRow, applyToRow } from './store.js';
import { fill, variables } from './template_vars.js';

export function createConversationView(ctx) {
  const me = store.me;
  let id = null;
  let conversation = null;   // the row from the last fetch / command (store row preferred)
  let seen = new Set();      // seqs shown in the transcript
  let maxSeq = 0;
  let noteMode = false;
  let pendingAttachment = null; // {file_id, name, size}
  let sendKey = null;           // Idempotency-Key of the message being sent (kept for retries)
  let sending = false;
  let loadToken = 0;
  let operators = null;
  let closePopover = null;
  let contactsForm = null;      // the side panel's contact editor while it is open (kept across re-renders)
  let leads = [];               // this conversation's CRM handoffs (GET .../leads), oldest first
  let card = null;              // the returning client's card (GET .../client), null while loading
  let cardError = null;
  // Read receipts (issue 13): how far this app has told the server it showed the conversation,
  // and how far the visitor has read the operators' replies ("Seen" under the last one).
  let readSent = 0;
  let visitorReadSeq = 0;
  let typingSentAt = 0;         // the operator's typing signal: at most one per TYPING_EVERY_MS
  let typingTimer = null;
  let projectName = null;       // for {{project.name}} in quick replies, fetched when first needed

  // ---- layout -------------------------------------------------------------------------
  const backButton = h('button', { class: 'btn btn-ghost back', type: 'button', onclick: () => ctx.closeConversation() },
    icon('back'), t('back_to_inbox'));
  const title = h('h2', { class: 'conv-title', id: 'conv-title', tabindex: '-1' });
  const subtitle = h('p', { class: 'conv-sub' });
  const actions = h('div', { class: 'conv-actions', role: 'group', 'aria-label': t('conversation_actions') });
  const detailsToggle = h('button', { class: 'btn btn-ghost details-toggle', type: 'button', 'aria-expanded': 'false',
    'aria-controls': 'side-panel', onclick: () => toggleDetails() }, t('details'));
  const head = h('header', { class: 'conv-head' }, backButton,
    h('div', { class: 'conv-heading' }, title, subtitle), actions, detailsToggle);

  const transcript = h('div', { class: 'transcript', 'data-testid': 'transcript', role: 'log', 'aria-live': 'polite',
    'aria-labelledby': 'conv-title', tabindex: '0' });
  const side = h('aside', { class: 'side-panel', id: 'side-panel', 'aria-label': t('details') });
  const banner = h('div', { class: 'conv-banner', hidden: true });
  const typing = h('p', { class: 'typing-indicator muted small', 'data-testid': 'visitor-typing', role: 'status',
    hidden: true }, t('visitor_typing'));

  // composer
  const input = h('textarea', { class: 'reply-input', id: 'reply-input', 'data-testid': 'reply-input', rows: '3',
    maxlength: '4000', 'aria-describedby': 'composer-hint' });
  const inputLabel = h('label', { for: 'reply-input', class: 'visually-hidden' }, t('reply_label'));
  const noteToggle = h('button', { class: 'btn toggle note-toggle', type: 'button', 'data-testid': 'note-toggle',
    'aria-pressed': 'false', onclick: () => setNoteMode(!noteMode) }, t('internal_note'));
  const fileInput = h('input', { type: 'file', id: 'attach-input', class: 'visually-hidden', 'data-testid': 'attach-input',
    onchange: () => { if (fileInput.files[0]) attach(fileInput.files[0]); fileInput.value = ''; } });
  const attachLabel = h('label', { for: 'attach-input', class: 'btn btn-ghost attach-label', title: t('attach_file') },
    icon('clip'), t('attach_file'));
  const templateButton = h('button', { class: 'btn btn-ghost', type: 'button', 'data-testid': 'template-button',
    'aria-haspopup': 'dialog', 'aria-keyshortcuts': 'Control+/', title: `${t('quick_replies')} (Ctrl+/)`,
    onclick: () => openTemplates() }, t('quick_replies'));
  const sendButton = h('button', { class: 'btn btn-primary send', type: 'submit', 'data-testid': 'send-button' }, t('send'));
  const attachment = h('div', { class: 'attachment-chip', hidden: true, 'aria-live': 'polite' });
  const composerError = h('p', { class: 'composer-error', role: 'alert' });
  const hint = h('p', { class: 'composer-hint', id: 'composer-hint' }, t('composer_hint'));
  const composer = h('form', { class: 'composer', 'aria-label': t('reply_label'), onsubmit: (e) => { e.preventDefault(); send(); } },
    h('div', { class: 'composer-modes' }, noteToggle, h('span', { class: 'note-badge', hidden: true }, t('note_not_visible'))),
    attachment, inputLabel, input,
    h('div', { class: 'composer-bar' }, attachLabel, fileInput, templateButton, h('span', { class: 'spacer' }), sendButton),
    composerError, hint);
  const picker = h('div', { class: 'popover-host' });

  const body = h('div', { class: 'conv-body' }, h('div', { class: 'conv-main' }, banner, transcript, typing, composer, picker), side);
  const empty = h('div', { class: 'conv-empty' }, h('p', null, t('pick_conversation')));
  const view = h('div', { class: 'conv-view', hidden: true }, head, body);
  const el = h('section', { class: 'conv-pane', 'aria-label': t('conversation') }, empty, view);

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  input.addEventListener('input', () => {
    if (id) store.drafts.set(id, input.value); sendKey = null; composerError.textContent = '';
    signalTyping();
  });
  document.addEventListener('visibilitychange', () => markRead());
  el.addEventListener('keydown', (e) => {   // Ctrl+/ anywhere in the conversation, the composer included
    if ((e.ctrlKey || e.metaKey) && e.key === '/' && id && !input.disabled) { e.preventDefault(); openTemplates(); }
  });

  const unsubscribe = subscribe((ids) => { if (id && ids.includes(id)) renderHead(); });

  function row() { return store.rows.get(id) || conversation; }
  // An erased conversation is a record only: nobody acts on it any more (the server refuses too).
  function canAct() { const r = row(); return !!r && !r.erased_at && (r.assignee_id === me.id || me.is_admin); }

  // ---- open / fetch ---------------------------------------------------------------------
  async function open(conversationId) {
    if (id === conversationId) return;
    closePopoverIfAny();
    id = conversationId; conversation = null; seen = new Set(); maxSeq = 0;
    readSent = 0; visitorReadSeq = 0; typing.hidden = true; clearTimeout(typingTimer);
    pendingAttachment = null; sendKey = null; contactsForm = null; leads = []; card = null; cardError = null;
    renderAttachment();
    empty.hidden = true; view.hidden = false;
    clear(transcript); clear(side); clear(actions);
    title.textContent = t('loading'); subtitle.textContent = '';
    input.value = store.drafts.get(id) || '';
    composerError.textContent = '';
    setNoteMode(false);
    await load();
    title.focus({ preventScroll: true });
  }

  async function load() {
    const token = ++loadToken;
    const forId = id;
    try {
      const result = await api('GET', `/api/conversations/${forId}`);
      if (token !== loadToken || forId !== id) return;
      conversation = result.conversation;
      putRow(result.conversation);
      seen = new Set(); maxSeq = 0; clear(transcript);
      for (const ev of result.events) addEvent(ev, false);
      scrollToEnd();
      renderHead();
      markRead();
      loadLeads();
      loadCard(false);
    } catch (e) {
      if (token !== loadToken) return;
      title.textContent = t('conversation');
      clear(transcript).append(h('p', { class: 'error', role: 'alert' },
        e.status === 404 ? t('conversation_not_found') : (e.message || t('network_error'))));
      clear(actions);
      composer.hidden = true;
    }
  }

  function close() {
    closePopoverIfAny();
    id = null; conversation = null;
    empty.hidden = false; view.hidden = true;
  }

  // ---- events -----------------------------------------------------------------------------
  /** A live push or a command result for the open conversation. */
  function applyEvent(ev) {
    if (!id || ev.conversation_id !== id || seen.has(ev.seq)) return;
    if (maxSeq && ev.seq > maxSeq + 1) { load(); return; }  // we missed something: fetch it whole
    const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
    addEvent(ev, true);
    if (nearBottom) scrollToEnd();
    if (ev.event === 'chat.visitor_message_posted') { typing.hidden = true; markRead(); }
    if (ev.event === 'chat.contacts_given') loadCard(false);   // who the client may be, and what to confirm
  }

  /** The operator is looking at the conversation: the visitor's messages up to maxSeq are read.
   * Only while the page is visible, and only when it moves forward (the server ignores the rest). */
  function markRead() {
    if (!id || document.visibilityState === 'hidden' || maxSeq <= readSent || !row()?.assignee_id) return;   // not while untaken
    const forId = id, upto = maxSeq;
    readSent = upto;
    api('POST', `/api/conversations/${forId}/read`, { seq: upto }, { quiet401: true })
      .then((result) => { for (const ev of result.events || []) { applyToRow(ev); if (forId === id) applyEvent(ev); } })
      .catch(() => { if (forId === id && readSent === upto) readSent = 0; });   // told again on the next chance
  }

  /** The visitor types (a push from /ws/operator): shown for a few seconds or until their message. */
  function showTyping(msg) {
    if (!id || msg.conversation_id !== id) return;
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typing.hidden = true; }, 4000);
  }

  /** The operator types a reply: the visitor sees it; at most one signal per 2 s, never for notes. */
  function signalTyping() {
    const now = Date.now();
    if (!id || noteMode || !canAct() || !input.value.trim() || now - typingSentAt < 2000) return;
    typingSentAt = now;
    api('POST', `/api/conversations/${id}/typing`, {}, { quiet401: true }).catch(() => { /* a typing dot only */ });
  }

  /** "Seen" under the last operator reply the visitor has read. */
  function renderSeen() {
    for (const old of transcript.querySelectorAll('.seen-mark')) old.remove();
    const replies = [...transcript.querySelectorAll('.msg-operator')].filter((n) => Number(n.dataset.seq) <= visitorReadSeq);
    const last = replies[replies.length - 1];
    if (last) last.querySelector('.msg-col').append(h('p', { class: 'seen-mark muted small', 'data-testid': 'seen' }, t('seen')));
  }

  function addEvent(ev, live) {
    if (seen.has(ev.seq)) return;
    seen.add(ev.seq);
    maxSeq = Math.max(maxSeq, ev.seq);
    if (ev.event === 'chat.read_by_visitor') { visitorReadSeq = Math.max(visitorReadSeq, ev.data.seq); }
    const node = eventEl(ev);
    if (!node) { if (ev.event === 'chat.read_by_visitor') renderSeen(); return; }
    node.dataset.seq = String(ev.seq);
    if (live) node.classList.add('fresh');
    // keep seq order even if events come out of order
    const after = [...transcript.children].find((c) => Number(c.dataset.seq) > ev.seq);
    transcript.insertBefore(node, after || null);
    if (ev.event === 'chat.operator_replied' && visitorReadSeq >= ev.seq) renderSeen();
  }

  function eventEl(ev) {
    const d = ev.data || {};
    const time = h('time', { datetime: ev.at, title: formatDateTime(ev.at) }, formatTime(ev.at));
    switch (ev.event) {
      case 'chat.visitor_message_posted':
        return h('div', { class: 'msg msg-visitor', 'data-testid': 'message', 'data-kind': 'visitor' },
          h('div', { class: 'msg-meta' }, h('span', { class: 'msg-author' }, row()?.visitor_name || row()?.identity?.name || t('visitor')), time),
          bubble(d));
      case 'chat.operator_replied':
        return h('div', { class: 'msg msg-operator', 'data-testid': 'message', 'data-kind': 'operator' },
          avatar(d.operator_name, d.operator_avatar_url, 'sm'),
          h('div', { class: 'msg-col' },
            h('div', { class: 'msg-meta' }, h('span', { class: 'msg-author' }, d.operator_name), time),
            bubble(d)));
      case 'chat.note_added':
        return h('div', { class: 'msg msg-note', 'data-testid': 'message', 'data-kind': 'note' },
          h('div', { class: 'msg-meta' }, h('strong', { class: 'note-label' }, icon('lock'), t('internal_note')),
            h('span', { class: 'msg-author' }, d.operator_name), time),
          h('div', { class: 'bubble' }, h('p', { class: d.erased ? 'text muted' : 'text' }, d.erased ? t('erased_message') : d.text)));
      case 'chat.conversation_started':
        return system(t(d.left_while_closed ? 'sys_started_offline' : 'sys_started'), time);
      case 'assignment.taken':
        return system(t('sys_taken', { name: d.operator_name }), time);
      case 'assignment.assigned':
        return system(t('sys_assigned', { by: d.by_name, name: d.operator_name }), time);
      case 'assignment.offered':     // auto-assignment: who was offered it, and when
        return system(t('sys_offered', { name: d.operator_name, n: d.seconds }), time);
      case 'assignment.offer_expired':
        return system(t('sys_offer_expired'), time);
      case 'assignment.accepted':
        return system(t('sys_accepted', { name: d.operator_name }), time);
      case 'status.changed':
        if (d.reason === 'idle') return system(t('sys_closed_idle', { n: d.idle_hours }), time);
        return system(t('sys_status', { status: statusLabel(d.status) }), time);
      case 'lead.requested':
        return system(t('sys_lead'), time);
      case 'chat.contacts_given': {
        const given = ['name', 'phone', 'email'].map((k) => d[k]).filter(Boolean).join(', ') || '—';
        return system(t(d.by_operator_id ? 'sys_contacts_by_operator' : 'sys_contacts', { contacts: given }), time);
      }
      case 'chat.page_visited':
        return system(t('sys_page', { url: d.page_url || t('erased_message') }), time);
      case 'chat.rated': {
        const stars = '★'.repeat(d.rating) + '☆'.repeat(5 - d.rating);
        const node = system(t(d.comment ? 'sys_rated_comment' : 'sys_rated', { stars, n: d.rating, comment: d.comment }), time);
        node.dataset.testid = 'rating';
        return node;
      }
      default:
        return null;
    }
  }

  function system(text, time) {
    return h('div', { class: 'msg msg-system', 'data-testid': 'message', 'data-kind': 'system' },
      h('span', null, text), ' ', time);
  }

  function bubble(d) {
    const b = h('div', { class: 'bubble' });
    if (d.erased) b.append(h('p', { class: 'text muted' }, t('erased_message')));
    if (d.text) b.append(h('p', { class: 'text' }, d.text));
    if (d.attachment) b.append(attachmentEl(d.attachment));
    return b;
  }

  function attachmentEl(a) {
    const link = h('a', { class: 'file', href: a.url, download: a.name, rel: 'noopener' },
      icon('clip'), h('span', { class: 'file-label' }, a.name), h('span', { class: 'muted' }, ` · ${formatSize(a.size)}`));
    if (/^image\/(png|jpeg|gif|webp)$/.test(a.content_type)) {
      return h('div', { class: 'file-image' }, h('img', { src: a.url, alt: a.name, loading: 'lazy' }), link);
    }
    return link;
  }

  function scrollToEnd() { transcript.scrollTop = transcript.scrollHeight; }

  // ---- header, actions, side panel ----------------------------------------------------------
  function renderHead() {
    const r = row();
    if (!r) return;
    title.textContent = r.visitor_name || r.identity?.name || t('visitor');
    if ((r.visitor_id || '').startsWith('verified:')) {   // Parley.identify with a valid hash (verified_visitors.py)
      title.append(' ', h('span', { class: 'chip chip-ok', 'data-testid': 'verified-badge', title: t('verified_hint') }, t('verified')));
    }
    clear(subtitle).append(h('span', { class: `status status-${r.status}` }, statusLabel(r.status)),
      h('span', null, r.assignee_name ? t('assigned_to', { name: r.assignee_name }) : t('unassigned')));
    if (r.waiting_since) {
      subtitle.append(h('span', { class: 'waiting', title: t('waiting') }, icon('clock'),
        h('span', { 'data-since': r.waiting_since }, waitingFor(r.waiting_since))));
    }

    clear(actions);
    const unclaimed = !r.assignee_id;
    if (unclaimed) {
      actions.append(h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'take-button',
        onclick: (e) => command(e.currentTarget, 'take') }, icon('bolt'), t('take')));
    }
    if (canAct()) {
      const select = h('select', { class: 'status-select', id: 'status-select', 'data-testid': 'status-select',
        onchange: (e) => command(e.currentTarget, 'status', { status: e.currentTarget.value }) },
      r.status === 'new' ? h('option', { value: 'new', disabled: true, selected: true }, statusLabel('new')) : null,
      h('option', { value: 'in_work', selected: r.status === 'in_work' }, statusLabel('in_work')),
      h('option', { value: 'closed', selected: r.status === 'closed' }, statusLabel('closed')));
      actions.append(h('label', { class: 'inline-label' }, h('span', { class: 'visually-hidden' }, t('status')), select));
    }
    if (me.is_admin && !r.erased_at) {
      actions.append(h('button', { class: 'btn', type: 'button', 'data-testid': 'assign-button', 'aria-haspopup': 'dialog',
        onclick: (e) => openAssign(e.currentTarget) }, t('assign_to')));
    }
    if (canAct()) {
      actions.append(h('button', { class: 'btn', type: 'button', 'data-testid': 'lead-button', 'aria-haspopup': 'dialog',
        onclick: (e) => openLeadConfirm(e.currentTarget) }, t('send_to_crm')));
    }
    const outcome = leadStatus(r);
    if (outcome) actions.append(outcome);

    // composer availability
    const allowed = canAct();
    composer.hidden = false;
    for (const c of [input, noteToggle, templateButton, sendButton]) c.disabled = !allowed;
    fileInput.disabled = !allowed || noteMode;
    attachLabel.classList.toggle('disabled', !allowed || noteMode);
    banner.hidden = allowed && !unclaimed && !r.erased_at;
    clear(banner);
    if (r.erased_at) {   // a record only: nothing to answer, nothing of the visitor
      banner.append(h('p', { 'data-testid': 'erased-banner' }, t('erased_banner', { date: formatDateTime(r.erased_at) })));
      composer.hidden = true;
    } else if (unclaimed) banner.append(h('p', null, allowed ? t('banner_unclaimed_admin') : t('banner_unclaimed')));
    else if (!allowed) banner.append(h('p', null, t('banner_not_yours', { name: r.assignee_name || '' })));

    renderSide(r);
    markRead();   // taken just now: what was only previewed is read from here on
  }

  function renderSide(r) {
    clear(side);
    const contacts = r.contacts || {};
    const dl = h('dl', { class: 'facts' });
    const fact = (label, value) => { if (value) dl.append(h('dt', null, label), h('dd', null, value)); };
    fact(t('contact_name'), contacts.name || r.visitor_name);
    fact(t('contact_phone'), contacts.phone);
    fact(t('contact_email'), contacts.email);
    dl.dataset.testid = 'contacts';
    if (r.identity && (r.identity.name || r.identity.email)) {   // what the site said of its logged-in user
      dl.append(h('dt', null, t('verified_as')), h('dd', { 'data-testid': 'verified-identity' },
        [r.identity.name, r.identity.email].filter(Boolean).join(', ')));
    }
    side.append(h('h3', null, t('visitor')), contactsForm
      || (dl.children.length ? dl : h('p', { class: 'muted', 'data-testid': 'contacts' }, t('no_contacts'))));
    if (!contactsForm && canAct()) {
      side.append(h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'edit-contacts',
        onclick: () => editContacts(contacts) }, t('edit_contacts')));
    }
    side.append(renderCard());
    side.append(h('h3', null, t('page')), r.page_url ? h('p', { class: 'page-url' }, safeLink(r.page_url)) : h('p', { class: 'muted' }, '—'));
    const params = Object.entries(r.custom_params || {});
    const pdl = h('dl', { class: 'facts params', 'data-testid': 'custom-params' });
    for (const [k, v] of params) pdl.append(h('dt', null, k), h('dd', null, v));
    side.append(h('h3', null, t('custom_params')), params.length ? pdl : h('p', { class: 'muted' }, t('no_params')));
    const info = h('dl', { class: 'facts' });
    info.append(h('dt', null, t('started')), h('dd', null, formatDateTime(r.started_at)));
    info.append(h('dt', null, t('crm')), h('dd', null, r.lead_requested_at
      ? `${t('lead_requested')} · ${formatDateTime(r.lead_requested_at)}` : t('lead_not_sent')));
    side.append(h('h3', null, t('conversation')), info);
  }

  // ---- the CRM: this conversation's handoff, the returning client's card -------------------
  /** The newest handoff's outcome: requested (not yet picked up, or on its way), "Lead #123
   *  created, responsible: …" with the CRM link, or the reason it failed with Retry. */
  function leadStatus(r) {
    const last = leads[leads.length - 1];
    const waiting = r.lead_requested_at && (!last || new Date(r.lead_requested_at) > new Date(last.created_at));
    if (!last && !waiting) return null;
    const chip = h('span', { class: 'chip lead-status', 'data-testid': 'lead-status', role: 'status' });
    if (waiting || last.status === 'pending') {
      chip.append(t('lead_pending'));
      if (!waiting && last.attempts > 1 && last.last_error) chip.title = last.last_error;
    } else if (last.status === 'delivered') {
      chip.classList.add('chip-ok');
      const text = t('lead_created', { id: last.lead_id, name: last.responsible?.name || t('crm_default_responsible') });
      chip.append(last.lead_url ? safeLink(last.lead_url, text) : text);
    } else {
      chip.classList.add('chip-error');
      chip.append(t('lead_failed', { reason: last.last_error || '' }));
      if (canAct()) {
        chip.append(' ', h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'lead-retry',
          onclick: (e) => retryLead(e.currentTarget, last.request_id) }, t('lead_retry')));
      }
    }
    return chip;
  }

  async function loadLeads() {
    const forId = id;
    try {
      const result = await api('GET', `/api/conversations/${forId}/leads`);
      if (forId !== id) return;
      leads = result.leads;
      renderHead();
    } catch { /* the chip keeps what it knew; the next push or reload asks again */ }
  }

  async function retryLead(button, requestId) {
    const forId = id;
    button.disabled = true;
    try {
      const delivery = await api('POST', `/api/conversations/${forId}/leads/${requestId}/retry`, {});
      if (forId !== id) return;
      leads = leads.map((l) => (l.request_id === delivery.request_id ? delivery : l));
      renderHead();
    } catch (e) {
      ctx.toastError(e.message || t('network_error'));
      if (button.isConnected) button.disabled = false;
    }
  }

  async function loadCard(refresh) {
    const forId = id;
    try {
      const result = await api('GET', `/api/conversations/${forId}/client${refresh ? '?refresh=1' : ''}`);
      if (forId !== id) return;
      card = result; cardError = null;
    } catch (e) {
      if (forId !== id) return;
      cardError = e.message || t('network_error');
    }
    const r = row();
    if (r) renderSide(r);
  }

  function leadLine(lead, crmStatus) {
    const text = lead.lead_id ? t('card_lead', { id: lead.lead_id }) : t(`card_delivery_${lead.status}`);
    const li = h('li', { 'data-testid': 'card-lead' }, lead.lead_url ? safeLink(lead.lead_url, text) : text);
    const status = crmStatus ?? lead.crm_status;
    if (status) li.append(' ', h('span', { class: 'chip', 'data-testid': 'card-lead-status' }, status));
    return li;
  }

  function renderCard() {
    const box = h('section', { class: 'client-card', 'data-testid': 'client-card', 'aria-labelledby': 'client-card-title' },
      h('h3', { id: 'client-card-title' }, t('client_card')));
    if (!card) {
      box.append(h('p', { class: cardError ? 'error' : 'muted' }, cardError || t('loading')));
      return box;
    }
    const earlier = card.earlier_conversations;
    if (!earlier.length) box.append(h('p', { class: 'muted', 'data-testid': 'card-new-client' }, t('card_new_client')));
    else {
      const list = h('ul', { class: 'card-list', 'data-testid': 'card-conversations' });
      for (const c of earlier) {
        const matched = c.matched_by.map((m) => t(`card_matched_${m}`)).join(', ');
        const item = h('li', { 'data-testid': 'card-conversation' },
          h('a', { href: `#/conversations/${c.id}` }, formatDateTime(c.started_at)), ' · ', statusLabel(c.status),
          c.assignee_name ? ` · ${c.assignee_name}` : '',
          h('span', { class: 'muted small' }, ` (${matched})`),
          // matched only by a contact the visitor typed: maybe not this client at all
          c.unconfirmed ? h('span', { class: 'chip chip-warn', 'data-testid': 'card-unconfirmed',
            title: t('card_unconfirmed_hint') }, t('card_unconfirmed')) : null);
        if (c.last_message_text) item.append(h('p', { class: 'muted small card-preview' }, c.last_message_text));
        if (c.leads.length) item.append(h('ul', { class: 'card-leads' }, ...c.leads.map((l) => leadLine(l))));
        list.append(item);
      }
      box.append(list);
    }
    if (card.hidden_conversations) {
      box.append(h('p', { class: 'muted small', 'data-testid': 'card-hidden' },
        t('card_hidden', { n: card.hidden_conversations })));
    }
    const crm = card.crm;
    if (crm.kind !== 'none') {
      box.append(h('h4', null, t('card_in_crm')));
      if (crm.unconfirmed && crm.unconfirmed.length) {
        // The CRM is asked only about contacts an operator confirmed: confirming them here
        // stores them as this conversation's contacts (PUT, as the contacts form does).
        box.append(h('p', { class: 'muted small', 'data-testid': 'card-confirm-hint' }, t('card_confirm_hint')),
          h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'card-confirm',
            onclick: async (e) => {
              e.currentTarget.disabled = true;
              const who = card.client;
              try {
                await api('PUT', `/api/conversations/${id}/contacts`,
                  { name: who.name || '', phone: who.phone || '', email: who.email || '' });
                await loadCard(true);
              } catch (err) { ctx.toastError(err.message || t('network_error')); await loadCard(false); }
            } }, t('card_confirm')));
      }
      if (crm.leads.length) {
        box.append(h('ul', { class: 'card-leads', 'data-testid': 'card-crm-leads' }, ...crm.leads.map((l) => leadLine(
          { lead_id: l.lead_id, lead_url: l.url }, l.status))));
      } else if (!crm.stale && !(crm.unconfirmed && crm.unconfirmed.length)) {
        box.append(h('p', { class: 'muted' }, t('card_no_crm_leads')));
      }
      if (crm.stale) {
        box.append(h('p', { class: 'card-stale', role: 'status', 'data-testid': 'card-stale' },
          t('card_stale', { reason: crm.error || '' })));
      }
      box.append(h('button', { class: 'btn btn-ghost btn-small', type: 'button', 'data-testid': 'card-refresh',
        onclick: (e) => { e.currentTarget.disabled = true; loadCard(true); } },
        crm.fetched_at ? t('card_refresh_at', { time: formatTime(crm.fetched_at) }) : t('card_refresh')));
    }
    return box;
  }

  /** The assignee or an admin types or corrects the contacts: PUT replaces them (an empty field is cleared). */
  function editContacts(contacts) {
    const key = uuid();
    const inputs = {};
    const error = h('p', { class: 'form-error', role: 'alert' });
    const labels = { name: 'contact_name', phone: 'contact_phone', email: 'contact_email' };
    const types = { name: 'text', phone: 'tel', email: 'email' };
    const form = h('form', { class: 'contacts-form', 'data-testid': 'contacts-form', novalidate: true, onsubmit: save });
    for (const k of ['name', 'phone', 'email']) {
      inputs[k] = h('input', { type: types[k], name: k, maxlength: '200', value: contacts[k] || '',
        'data-testid': `contact-${k}`, oninput: () => { error.textContent = ''; } });
      form.append(h('label', { class: 'contacts-field' }, h('span', null, t(labels[k])), inputs[k]));
    }
    const saveButton = h('button', { class: 'btn btn-primary btn-small', type: 'submit', 'data-testid': 'save-contacts' }, t('save'));
    form.append(error, h('div', { class: 'form-actions' }, saveButton,
      h('button', { class: 'btn btn-ghost btn-small', type: 'button', onclick: () => { contactsForm = null; renderHead(); } },
        t('cancel'))));
    const forId = id;
    async function save(e) {
      e.preventDefault();
      saveButton.disabled = true;
      const body = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value.trim() || null]));
      try {
        const result = await api('PUT', `/api/conversations/${forId}/contacts`, body, { idempotencyKey: key });
        if (forId === id) contactsForm = null;
        applyResult(forId, result);
      } catch (err) {
        const field = { name_invalid: 'name', phone_invalid: 'phone', email_invalid: 'email' }[err.code];
        error.textContent = field ? t(`contact_${field}_invalid`) : (err.message || t('network_error'));
        if (field) inputs[field].focus();
      } finally {
        saveButton.disabled = false;
      }
    }
    contactsForm = form;
    renderHead();
    inputs.name.focus();
  }

  function toggleDetails(force) {
    const open = force ?? detailsToggle.getAttribute('aria-expanded') !== 'true';
    detailsToggle.setAttribute('aria-expanded', String(open));
    body.classList.toggle('details-open', open);
  }

  // ---- commands -------------------------------------------------------------------------
  async function command(button, action, payload, key) {
    const forId = id;
    if (button) button.disabled = true;
    try {
      const result = await api('POST', `/api/conversations/${forId}/${action}`, payload ?? {}, { idempotencyKey: key });
      applyResult(forId, result);
      return result;
    } catch (e) {
      ctx.toastError(e.message || t('network_error'));
      if (e.code === 'already_taken' || e.status === 404) { ctx.refreshInbox(); }
      renderHead();
      return null;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  function applyResult(forId, result) {
    for (const ev of result.events || []) { applyToRow(ev); if (forId === id) applyEvent(ev); }
    putRow(result.conversation);
    if (forId === id) { conversation = result.conversation; renderHead(); scrollToEnd(); }
  }

  function setNoteMode(on) {
    noteMode = on;
    noteToggle.setAttribute('aria-pressed', String(on));
    composer.classList.toggle('note-mode', on);
    composer.querySelector('.note-badge').hidden = !on;
    input.placeholder = on ? t('note_placeholder') : t('reply_placeholder');
    inputLabel.textContent = on ? t('note_label') : t('reply_label');
    sendButton.textContent = on ? t('add_note') : t('send');
    fileInput.disabled = on || !canAct();
    attachLabel.classList.toggle('disabled', on || !canAct());
    if (on && pendingAttachment) composerError.textContent = t('note_no_attachment');
  }

  async function send() {
    if (sending || !id || !canAct()) return;
    const text = input.value.trim();
    if (!text && !(pendingAttachment && !noteMode)) return;
    if (pendingAttachment && pendingAttachment.uploading) { composerError.textContent = t('wait_upload'); return; }
    if (!sendKey) sendKey = uuid();
    const forId = id, key = sendKey, wasNote = noteMode;
    const payload = wasNote ? { text } : { text, ...(pendingAttachment ? { attachment: pendingAttachment.file_id } : {}) };
    sending = true; sendButton.disabled = true; composerError.textContent = '';
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await api('POST', `/api/conversations/${forId}/${wasNote ? 'notes' : 'messages'}`, payload, { idempotencyKey: key });
        if (forId === id) {
          input.value = ''; store.drafts.delete(forId); sendKey = null;
          if (!wasNote) { pendingAttachment = null; renderAttachment(); }
          if (wasNote) setNoteMode(false);
        }
        applyResult(forId, result);
        break;
      } catch (e) {
        // Network trouble: retry with the same key (the server keeps one copy). Refusals: say why.
        if (e.status === 0 && attempt < 4) { await new Promise((r) => setTimeout(r, 800 * 2 ** attempt)); continue; }
        if (forId === id) composerError.textContent = e.message || t('send_failed');
        break;
      }
    }
    sending = false; sendButton.disabled = !canAct();
    if (forId === id) input.focus();
  }

  // ---- attachments ------------------------------------------------------------------------
  async function attach(file) {
    if (!id) return;
    composerError.textContent = '';   // a refused earlier file's error goes with the next try
    const forId = id;
    const progress = h('progress', { max: '1', value: '0', 'aria-label': t('uploading', { name: file.name }) });
    pendingAttachment = { uploading: true, name: file.name, size: file.size, progress };
    renderAttachment();
    try {
      const result = await upload(`/api/conversations/${forId}/attachments`, file, {
        headers: { 'X-File-Name': fileNameHeader(file.name) },
        onProgress: (p) => { progress.value = p; },
      });
      if (forId !== id) return;
      pendingAttachment = { file_id: result.file_id, name: result.name, size: result.size };
      renderAttachment();
      input.focus();
    } catch (e) {
      if (forId !== id) return;
      pendingAttachment = null;
      renderAttachment();
      composerError.textContent = e.message || t('upload_failed');
    }
  }

  function renderAttachment() {
    clear(attachment);
    attachment.hidden = !pendingAttachment;
    if (!pendingAttachment) return;
    const a = pendingAttachment;
    attachment.append(icon('clip'), h('span', { class: 'file-name' }, a.name),
      h('span', { class: 'muted' }, ` · ${formatSize(a.size)}`));
    if (a.uploading) attachment.append(' ', a.progress, h('span', { class: 'muted' }, ` ${t('uploading_short')}`));
    else {
      attachment.append(h('span', { class: 'chip chip-ok', 'data-testid': 'attachment-ready' }, t('attached')),
        h('button', { class: 'btn btn-ghost btn-small', type: 'button', 'aria-label': t('remove_attachment', { name: a.name }),
          onclick: () => { pendingAttachment = null; renderAttachment(); input.focus(); } }, '✕'));
    }
  }

  // ---- popovers: templates, assign ------------------------------------------------------------
  function closePopoverIfAny() { if (closePopover) closePopover(); }

  function popover(node, anchor, onClose) {
    closePopoverIfAny();
    clear(picker).append(node);
    let release = null, open = true;
    const outside = (e) => { if (!node.contains(e.target) && e.target !== anchor) done(); };
    function done(returnFocus = true) {
      open = false;
      document.removeEventListener('mousedown', outside, true);
      if (release) release();
      clear(picker);
      closePopover = null;
      if (onClose) onClose();
      if (returnFocus && anchor && anchor.isConnected) anchor.focus();
    }
    // Listened for from the next task (not the click that opened it); a popover closed
    // before then (opened twice by one shortcut) must not leave its listener behind to
    // close the next one on its first click.
    setTimeout(() => { if (open) document.addEventListener('mousedown', outside, true); });
    release = trapFocus(node, () => done());
    closePopover = done;
    return done;
  }

  function openTemplates() {
    if (!id || input.disabled) return;
    const search = h('input', { type: 'search', class: 'template-search', 'data-testid': 'template-search', id: 'template-search',
      role: 'combobox', 'aria-expanded': 'true', 'aria-controls': 'template-list', 'aria-autocomplete': 'list',
      autocomplete: 'off', placeholder: t('search_templates') });
    const listbox = h('ul', { class: 'template-list', id: 'template-list', role: 'listbox', 'aria-label': t('quick_replies') });
    const status = h('p', { class: 'muted small', role: 'status' });
    const node = h('div', { class: 'popover templates-popover', role: 'dialog', 'aria-label': t('quick_replies') },
      h('label', { for: 'template-search', class: 'popover-title' }, t('quick_replies')), search, status, listbox,
      h('p', { class: 'muted small' }, t('templates_hint')));
    let items = [], active = 0, token = 0, timer = null;
    const done = popover(node, input);

    function draw() {
      clear(listbox);
      items.forEach((tpl, i) => {
        const opt = h('li', { role: 'option', id: `tpl-${i}`, class: `template-option${i === active ? ' active' : ''}`,
          'data-testid': 'template-option', 'aria-selected': String(i === active),
          onmousedown: (e) => { e.preventDefault(); choose(i); } },
        h('strong', null, tpl.title), h('span', { class: 'tpl-text' }, tpl.text));
        listbox.append(opt);
      });
      if (items.length) search.setAttribute('aria-activedescendant', `tpl-${active}`);
      else search.removeAttribute('aria-activedescendant');
      const activeEl = listbox.children[active];
      if (activeEl) activeEl.scrollIntoView({ block: 'nearest' });
    }
    async function find() {
      const mine = ++token;
      try {
        const q = search.value.trim();
        const result = await api('GET', `/api/templates${q ? `?q=${encodeURIComponent(q)}` : ''}`);
        if (mine !== token) return;
        items = result.templates; active = 0;
        status.textContent = items.length ? '' : t('no_templates');
        draw();
      } catch (e) { if (mine === token) status.textContent = e.message || t('network_error'); }
    }
    async function choose(i) {
      const tpl = items[i];
      if (!tpl) return;
      done(false);
      const start = input.selectionStart ?? input.value.length, end = input.selectionEnd ?? input.value.length;
      const names = variables(tpl.text);
      if (!names.length) { insertAt(tpl.text, start, end); return; }   // at once: nothing to fill
      const context = await templateContext(names.includes('project.name'));
      const filled = fill(tpl.text, context);
      if (filled.missing.length) askForValues(tpl, context, filled.missing, start, end);
      else insertAt(filled.text, start, end);
    }
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(find, 150); });
    search.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') { e.preventDefault(); if (items.length) { active = (active + 1) % items.length; draw(); } }
      else if (e.key === 'ArrowUp') { e.preventDefault(); if (items.length) { active = (active - 1 + items.length) % items.length; draw(); } }
      else if (e.key === 'Enter') { e.preventDefault(); choose(active); }
    });
    find();
    search.focus();
  }

  function insertAt(text, start, end) {
    input.setRangeText(text, start, end, 'end');
    input.dispatchEvent(new Event('input'));
    input.focus();
  }

  /** What a quick reply's variables are filled from: the conversation's contacts (or the
   *  client card's name), the operator, the project and the visitor's custom params. */
  async function templateContext(withProject) {
    if (withProject && projectName === null) {
      try { projectName = (await api('GET', '/api/project')).name || ''; } catch { projectName = ''; }
    }
    const r = row() || {};
    const known = (card && card.client) || {};
    return { visitor: { name: (r.contacts || {}).name || known.name || null }, operator: { name: me.name || null },
      project: { name: projectName || null }, params: r.custom_params || {} };
  }

  /** A quick reply with values nobody knows yet ({{params.office}} the visitor never
   *  sent): the operator types them before the text goes into the composer, so a reply
   *  never goes out with braces in it. */
  function askForValues(tpl, context, missing, start, end) {
    const fields = missing.map((name, i) => {
      const field = h('input', { type: 'text', id: `tpl-value-${i}`, 'data-testid': 'template-value',
        'data-variable': name, maxlength: '256', autocomplete: 'off' });
      return { name, field, row: h('div', { class: 'field' },
        h('label', { for: `tpl-value-${i}` }, t('template_value_for', { name: `{{${name}}}` })), field) };
    });
    const error = h('p', { class: 'field-error', role: 'alert' });
    const preview = h('p', { class: 'template-preview', 'data-testid': 'template-fill-preview' });
    const given = () => Object.fromEntries(fields.map((f) => [f.name, f.field.value]));
    const redraw = () => { preview.textContent = fill(tpl.text, context, given()).text; };
    const insert = h('button', { class: 'btn btn-primary btn-small', type: 'submit', 'data-testid': 'template-fill-insert' },
      t('template_insert'));
    const form = h('form', { class: 'popover template-fill', role: 'dialog', 'aria-labelledby': 'template-fill-title',
      'data-testid': 'template-fill', novalidate: true },
    h('p', { class: 'popover-title', id: 'template-fill-title' }, t('template_fill_title', { title: tpl.title })),
    ...fields.map((f) => f.row), preview, error,
    h('div', { class: 'form-actions' }, insert,
      h('button', { class: 'btn btn-ghost btn-small', type: 'button', onclick: () => close() }, t('cancel'))));
    for (const f of fields) {
      f.field.addEventListener('input', () => { f.field.removeAttribute('aria-invalid'); error.textContent = ''; redraw(); });
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const filled = fill(tpl.text, context, given());
      if (filled.missing.length) {
        for (const f of fields) if (filled.missing.includes(f.name)) f.field.setAttribute('aria-invalid', 'true');
        error.textContent = t('template_values_required');
        fields.find((f) => filled.missing.includes(f.name)).field.focus();
        return;
      }
      close(false);
      insertAt(filled.text, start, end);
    });
    redraw();
    const close = popover(form, input);
    fields[0].field.focus();
  }

  async function openAssign(anchor) {
    const list = h('ul', { class: 'menu-list', role: 'list' });
    const status = h('p', { class: 'muted small', role: 'status' }, t('loading'));
    const node = h('div', { class: 'popover assign-popover', role: 'dialog', 'aria-label': t('assign_to') },
      h('p', { class: 'popover-title' }, t('assign_to')), status, list);
    const done = popover(node, anchor);
    try {
      if (!operators) operators = (await api('GET', '/api/operators')).operators;
      const r = row();
      const active = operators.filter((o) => o.active);
      status.textContent = active.length ? '' : t('no_operators');
      for (const o of active) {
        const current = r && r.assignee_id === o.id;
        list.append(h('li', null, h('button', { class: 'menu-item', type: 'button', 'data-testid': 'assign-option',
          'data-operator-id': o.id, 'aria-current': current ? 'true' : null,
          onclick: async () => { done(); await command(null, 'assign', { operator_id: o.id }); } },
        avatar(o.name, o.avatar_url, 'sm'), h('span', null, o.name), current ? h('span', { class: 'muted' }, ` · ${t('current')}`) : null)));
      }
      const first = list.querySelector('button');
      if (first) first.focus();
    } catch (e) { status.textContent = e.message || t('network_error'); }
  }

  /** "Send to CRM" asks first, showing what the lead will carry: a stray click makes no
   *  lead, a lead nobody can reach is not offered, and a second lead is said to be one. */
  async function openLeadConfirm(anchor) {
    const forId = id;
    anchor.disabled = true;
    await loadCard(false);   // who the client is now (contacts given since the card was drawn)
    if (anchor.isConnected) anchor.disabled = false;
    const r = row();
    if (!r || forId !== id) return;
    const own = r.contacts || {};
    const known = (card && card.client) || {};
    const facts = h('dl', { class: 'facts', 'data-testid': 'lead-confirm-contacts' });
    for (const [k, label] of [['name', 'contact_name'], ['phone', 'contact_phone'], ['email', 'contact_email']]) {
      const value = own[k] || known[k];
      if (!value) continue;
      facts.append(h('dt', null, t(label)), h('dd', null, value,
        own[k] ? null : h('span', { class: 'muted small' }, ` · ${t('lead_confirm_known')}`)));
    }
    const reachable = !!(own.phone || own.email || known.phone || known.email);
    const sentAt = r.lead_requested_at || (leads.length ? leads[leads.length - 1].created_at : null);
    const send = h('button', { class: 'btn btn-primary btn-small', type: 'button', 'data-testid': 'lead-confirm',
      disabled: !reachable }, t(sentAt ? 'lead_confirm_send_again' : 'lead_confirm_send'));
    const node = h('div', { class: 'popover lead-popover', role: 'dialog', 'aria-labelledby': 'lead-confirm-title',
      'data-testid': 'lead-confirm-dialog' },
    h('p', { class: 'popover-title', id: 'lead-confirm-title' }, t('lead_confirm_title')),
    facts.children.length ? facts : null,
    sentAt ? h('p', { class: 'lead-warning', role: 'alert', 'data-testid': 'lead-confirm-again' },
      t('lead_confirm_again', { time: formatDateTime(sentAt) })) : null,
    reachable ? null : h('p', { class: 'error', role: 'alert', 'data-testid': 'lead-confirm-no-contacts' }, t('lead_confirm_no_contacts')),
    h('div', { class: 'form-actions' }, send,
      reachable ? null : h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'lead-edit-contacts',
        onclick: () => { done(false); editContacts(own); } }, t('edit_contacts')),
      h('button', { class: 'btn btn-ghost btn-small', type: 'button', 'data-testid': 'lead-cancel', onclick: () => done() }, t('cancel'))));
    const done = popover(node, anchor);
    send.addEventListener('click', async () => {
      done(false);
      await command(anchor, 'lead', sentAt ? { again: true } : {}, uuid());
    });
    (reachable ? send : node.querySelector('button')).focus();
  }

  return {
    el,
    open,
    close,
    applyEvent,
    showTyping,
    /** crm-bridge's lead.created / lead.failed for a conversation: the open one shows it at once. */
    applyLeadOutcome(msg) { if (id && msg.conversation_id === id) { loadLeads(); loadCard(true); } },
    reload() { if (id) return load(); return Promise.resolve(); },
    forgetOperators() { operators = null; },
    get id() { return id; },
    destroy() { unsubscribe(); closePopoverIfAny(); },
  };
}
