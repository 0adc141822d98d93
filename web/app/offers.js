// Auto-assignment's offers (issue 13): the gateway sends the offered operator
// {type: 'notification', kind: 'offer', conversation_id, offer_id, seconds}; a pop-up with
// Accept stands while the offer does. Accept: POST /api/conversations/{id}/accept {offer_id};
// the conversation is then mine and opens. The pop-up goes when the offer ends (accepted,
// expired - it has moved to the next operator - or taken by someone), as the conversation's
// events say.
//
// The pop-up shows what the visitor wrote (so an operator can judge it without leaving
// what they are doing) and counts down to the offer's end.
import { api } from './api.js';
import { h } from './dom.js';
import { t } from './i18n.js';
import * as notify from './notify.js';
import { store } from './store.js';

const standing = new Map();   // conversation id -> {offerId, remove}

export function showOffer(msg, openConversation) {
  endOffer(msg.conversation_id);
  notify.ding();
  const preview = h('p', { class: 'offer-preview', 'data-testid': 'offer-preview' });
  const countdown = h('p', { class: 'offer-countdown', 'data-testid': 'offer-countdown', 'aria-live': 'off' });
  const ends = (msg.at ? Date.parse(msg.at) : Date.now()) + 1000 * Number(msg.seconds || 0);
  const tick = () => {
    const left = Math.max(0, Math.round((ends - Date.now()) / 1000));
    countdown.textContent = t('offer_countdown', { n: left });
  };
  tick();
  const timer = setInterval(tick, 1000);
  const row = store.rows.get(msg.conversation_id);
  const fill = (r) => {
    if (!r) return;
    preview.replaceChildren(h('strong', null, r.visitor_name || t('visitor')),
      r.last_message_text ? `: ${r.last_message_text}` : '');
  };
  if (row && row.last_message_text) fill(row);
  else {
    api('GET', `/api/conversations/${encodeURIComponent(msg.conversation_id)}`, undefined, { quiet401: true })
      .then((r) => fill(r.conversation)).catch(() => { /* the preview is a nicety */ });
  }
  // On the desktop too, standing while the offer does: closed when it ends or is accepted.
  const shown = notify.desktop(t('offer_title'), row && row.last_message_text ? row.last_message_text : '',
    { tag: `offer-${msg.conversation_id}`, waitsOnMe: true, conversationId: msg.conversation_id });
  const removeToast = notify.toast({
    kind: 'offer', title: t('offer_title'), extra: h('div', null, preview, countdown), persistent: true, role: 'alert',
    actions: [{ label: t('offer_accept'), primary: true, testid: 'offer-accept', dismiss: true, onClick: async () => {
      standing.delete(msg.conversation_id);
      clearInterval(timer);
      if (shown) shown.close();
      try {
        await api('POST', `/api/conversations/${encodeURIComponent(msg.conversation_id)}/accept`, { offer_id: msg.offer_id });
        openConversation(msg.conversation_id);
      } catch (e) {
        notify.toast({ kind: 'info', body: e.code === 'offer_gone' ? t('offer_gone') : (e.message || t('network_error')) });
      }
    } }],
  });
  const remove = () => { clearInterval(timer); removeToast(); if (shown) shown.close(); };
  standing.set(msg.conversation_id, { offerId: msg.offer_id, remove });
}

/** A conversation event: the pop-up goes when its offer is no longer standing. */
export function onConversationEvent(msg) {
  const offer = standing.get(msg.conversation_id);
  if (!offer) return;
  const d = msg.data || {};
  if ((msg.event === 'assignment.offer_expired' && d.offer_id === offer.offerId) || msg.event === 'assignment.accepted'
      || msg.event === 'assignment.taken' || msg.event === 'assignment.assigned'
      || (msg.event === 'status.changed' && d.status === 'closed')) endOffer(msg.conversation_id);
}

function endOffer(conversationId) {
  const offer = standing.get(conversationId);
  if (offer) { offer.remove(); standing.delete(conversationId); }
}
