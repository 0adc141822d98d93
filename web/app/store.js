// What the app knows about conversations, kept current from REST fetches and live pushes.
// Survives re-rendering (e.g. a language switch). Events are deduplicated by seq.

export const store = {
  me: null,
  rows: new Map(),      // conversation id -> inbox row (as /api/inbox returns it)
  drafts: new Map(),    // conversation id -> unsent reply text
  listeners: new Set(),
};

export function subscribe(fn) { store.listeners.add(fn); return () => store.listeners.delete(fn); }
function changed(ids) { for (const fn of store.listeners) fn(ids); }

export function inView(row, view, me = store.me) {
  if (view === 'new') return row.status === 'new' && !row.assignee_id;
  if (view === 'mine') return row.assignee_id === me.id && row.status !== 'closed';
  if (view === 'closed') return row.assignee_id === me.id && row.status === 'closed';
  if (view === 'all') return !!me.is_admin;
  return false;
}

/** Rows from a fetch replace ours unless ours already went further (a push raced the fetch). */
export function putRows(rows, { view } = {}) {
  const ids = [];
  const fetched = new Set();
  for (const row of rows) {
    fetched.add(row.id);
    const ours = store.rows.get(row.id);
    if (!ours || (ours.version || 0) <= (row.version || 0)) store.rows.set(row.id, { ...row });
    ids.push(row.id);
  }
  // A row we hold in this view that the server no longer lists there has moved on (taken by
  // someone else, or not visible to us any more): forget it unless a push is newer.
  if (view) {
    for (const [id, row] of store.rows) {
      if (!fetched.has(id) && inView(row, view) && !(view === 'all')) {
        if (!row._localOnly) { store.rows.delete(id); ids.push(id); }
      }
    }
  }
  changed(ids);
}

export function putRow(row) { putRows([row]); }

function preview(data) {
  if (!data.text && data.attachment) return `📎 ${data.attachment.name}`;
  const text = data.text || '';
  return text.length <= 140 ? text : `${text.slice(0, 139)}…`;
}

/** Apply a conversation event (push or command result) to the inbox row. Returns false for a duplicate. */
export function applyToRow(ev) {
  const id = ev.conversation_id;
  let row = store.rows.get(id);
  if (!row) {
    if (ev.event !== 'chat.conversation_started') return 'unknown';
    row = { id, status: 'new', assignee_id: null, assignee_name: null, visitor_name: null, contacts: {},
      custom_params: {}, page_url: null, last_message_text: null, last_message_from: null,
      last_message_at: ev.at, waiting_since: null, unread: 0, started_at: ev.at, lead_requested_at: null,
      version: 0, _localOnly: true };
    store.rows.set(id, row);
  }
  if (ev.seq <= (row.version || 0)) return false;
  const gap = row.version > 0 && ev.seq > row.version + 1;
  const d = ev.data || {};
  switch (ev.event) {
    case 'chat.conversation_started':
      row.page_url = d.page_url || row.page_url; row.left_while_closed = !!d.left_while_closed; break;
    case 'chat.visitor_message_posted':
      row.last_message_text = preview(d); row.last_message_from = 'visitor'; row.last_message_at = ev.at;
      row.unread = (row.unread || 0) + 1; row.waiting_since = row.waiting_since || ev.at; break;
    case 'chat.operator_replied':
      row.last_message_text = preview(d); row.last_message_from = 'operator'; row.last_message_at = ev.at;
      row.unread = 0; row.waiting_since = null; break;
    case 'chat.custom_params_set': row.custom_params = { ...(row.custom_params || {}), ...d.params }; break;
    case 'chat.contacts_given': { // the visitor's add to what is known; an operator's replace it
      const given = Object.fromEntries(['name', 'phone', 'email'].filter((k) => d[k]).map((k) => [k, d[k]]));
      row.contacts = d.by_operator_id ? given : { ...(row.contacts || {}), ...given };
      if (d.name || d.by_operator_id) row.visitor_name = d.name || null;
      break;
    }
    case 'chat.page_visited': row.page_url = d.page_url; break;
    case 'assignment.taken': case 'assignment.assigned':
      row.assignee_id = d.operator_id; row.assignee_name = d.operator_name; break;
    case 'status.changed': row.status = d.status; break;
    case 'lead.requested': row.lead_requested_at = ev.at; break;
    case 'chat.read_by_operator': row.unread = 0; break;   // an operator opened it (later messages count again)
    case 'chat.conversation_erased':   // a record is left: nothing of the visitor
      Object.assign(row, { visitor_name: null, contacts: {}, custom_params: {}, page_url: null, last_message_text: null,
        identity: null, erased_at: ev.at });
      break;
    default: break;
  }
  row.version = ev.seq;
  changed([id]);
  return gap ? 'gap' : true;
}

export function removeRow(id) { if (store.rows.delete(id)) changed([id]); }
