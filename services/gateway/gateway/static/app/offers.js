// Auto-assignment's offers (issue 13): the gateway sends the offered operator
// {type: 'notification', kind: 'offer', conversation_id, offer_id, seconds}; a pop-up with
// Accept stands while the offer does. Accept: POST /api/conversations/{id}/accept {offer_id};
// the conversation is then mine and opens. The pop-up goes when the offer ends (accepted,
// expired - it has moved to the next operator - or taken by someone), as the conversation's
// events say.
import { api } from './api.js';
import { t } from './i18n.js';
import * as notify from './notify.js';

const standing = new Map();   // conversation id -> {offerId, remove}

export function showOffer(msg, openConversation) {
  endOffer(msg.conversation_id);
  notify.ding();
  const remove = notify.toast({
    kind: 'offer', title: t('offer_title'), body: t('offer_body', { n: msg.seconds }), persistent: true, role: 'alert',
    actions: [{ label: t('offer_accept'), primary: true, testid: 'offer-accept', dismiss: true, onClick: async () => {
      standing.delete(msg.conversation_id);
      try {
        await api('POST', `/api/conversations/${encodeURIComponent(msg.conversation_id)}/accept`, { offer_id: msg.offer_id });
        openConversation(msg.conversation_id);
      } catch (e) {
        notify.toast({ kind: 'info', body: e.code === 'offer_gone' ? t('offer_gone') : (e.message || t('network_error')) });
      }
    } }],
  });
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
