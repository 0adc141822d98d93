// Presence in the header (issue 13): my own status switch (online / away / offline), and for
// admins who of the team is online now. GET/PUT /api/presence; kept current by the socket's
// {type: 'presence'} frames (the gateway sends admins everyone's, and each operator their own).
// A closed app counts as offline after a short grace, whatever the switch says.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t } from './i18n.js';
import { toastError } from './notify.js';

const STATUSES = ['online', 'away', 'offline'];

export function createPresence(me) {
  const select = h('select', { id: 'presence-select', class: 'presence-select', 'data-testid': 'presence-select',
    onchange: async () => {
      const chosen = select.value;
      select.disabled = true;
      try { apply({ operator_id: me.id, ...(await api('PUT', '/api/presence', { status: chosen })) }); } catch (e) { toastError(e.message); }
      select.disabled = false;
    } });
  for (const s of STATUSES) select.append(h('option', { value: s }, t(`presence_${s}`)));
  const team = h('span', { class: 'team-presence', 'data-testid': 'team-presence', role: 'status', hidden: !me.is_admin });
  const statuses = new Map();     // operator id -> {name, status}
  const el = h('span', { class: 'presence' },
    h('label', { for: 'presence-select', class: 'visually-hidden' }, t('presence_label')), select, team);

  function drawTeam() {
    if (!me.is_admin) return;
    const online = [...statuses.values()].filter((o) => o.status === 'online').map((o) => o.name);
    clear(team).append(online.length ? t('team_online', { names: online.join(', ') }) : t('team_online_none'));
    team.setAttribute('data-online', String(online.length));
    team.title = team.textContent;   // the whole list, when the header cuts it short
  }

  function apply(msg) {
    if (msg.operator_id === me.id && msg.chosen) select.value = msg.chosen;
    if (msg.operator_id && msg.status) {
      const known = statuses.get(msg.operator_id);
      statuses.set(msg.operator_id, { name: msg.name || (known && known.name) || (msg.operator_id === me.id ? me.name : '?'), status: msg.status });
      drawTeam();
    }
  }

  api('GET', '/api/presence').then((p) => {
    select.value = p.chosen;
    for (const o of p.operators || []) statuses.set(o.id, { name: o.name, status: o.status });
    drawTeam();
  }).catch(() => {});
  return { el, apply };
}
