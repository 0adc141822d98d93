// Working hours (admins): the "show any time" switch, the project's time zone, the intervals of
// each weekday (one may cross midnight), dates off, dates with their own hours, and the two
// timers (unanswered alert, idle close). One section of the settings page.
//
// The body is the documented one (docs/working-hours.md): GET and PUT /api/project/schedule.
// The server validates; its 422 `<field>_invalid` is shown next to that field with the
// server's message (which names the exact place, e.g. "week.tue: 13:30-14:00 overlaps ...").
// API strings always go in as text nodes.
import { api, uuid } from './api.js';
import { h, clear } from './dom.js';
import { t, getLang } from './i18n.js';

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const FIELDS = ['show_any_time', 'time_zone', 'week', 'dates_off', 'special_dates', 'unanswered_alert_minutes', 'idle_close_hours'];
const TIMERS = [
  { name: 'unanswered_alert_minutes', max: 1440, fallback: 5 },
  { name: 'idle_close_hours', max: 720, fallback: 24 },
];
const STATUS_RECHECK_MS = 1500;   // the gateway learns of a save from schedule.updated: look again shortly after

let seq = 0;
const uid = (prefix) => `${prefix}-${++seq}`;

function say(el, text, kind = 'error') {
  el.textContent = text || '';
  el.className = `form-message ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

/** The browser's IANA zones (with the current one and UTC), or null when it cannot list them. */
function zoneList(current) {
  let zones = null;
  try { if (typeof Intl.supportedValuesOf === 'function') zones = Intl.supportedValuesOf('timeZone'); } catch { /* old browser */ }
  if (!zones || !zones.length) return null;
  const all = new Set(zones);
  all.add('UTC');
  if (current) all.add(current);
  return [...all].sort();
}

function browserZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch { return ''; }
}

/** An instant as the project's local date and time (and the zone's name). */
function formatIn(iso, zone) {
  const d = new Date(iso);
  try {
    return new Intl.DateTimeFormat(getLang(), { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: zone }).format(d);
  } catch {
    return new Intl.DateTimeFormat(getLang(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
  }
}

/** A time input's value from the API's "HH:MM" ("24:00", the end of the day, is 00:00 on a clock). */
const toClock = (v) => (v === '24:00' ? '00:00' : v || '');

export async function hoursSection(node) {
  // First: a refusal (not an admin) is all the page shows.
  let current = await api('GET', '/api/project/schedule');
  let projectId = null;
  try { projectId = (await api('GET', '/api/project')).id; } catch { /* no status line then */ }

  const errors = {};      // field -> its error line
  const week = {};        // day -> {group, list, rows: [{li, start, end}]}
  const offRows = [];     // [{li, input}]
  const specialRows = []; // [{li, date, list, rows}]
  const timers = {};      // name -> {input, off}
  let statusTimer = null;

  // ---- the status line: what the widget says now ----
  const status = h('p', { class: 'hours-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'hours-status', hidden: true });

  // ---- show any time ----
  const showAny = h('input', { type: 'checkbox', id: 'hours-show-any-time', 'data-testid': 'hours-show-any-time',
    'aria-describedby': 'hours-show-any-time-hint hours-show_any_time-error' });
  const showAnySet = h('fieldset', { class: 'hours-group', 'data-testid': 'hours-availability' },
    h('legend', null, t('hours_availability')),
    h('label', { class: 'check', for: 'hours-show-any-time' }, showAny, h('span', null, t('hours_show_any_time'))),
    h('p', { class: 'field-hint', id: 'hours-show-any-time-hint' }, t('hours_show_any_time_hint')),
    errorLine('show_any_time'));

  // ---- time zone ----
  const zones = zoneList(current.time_zone);
  const zone = zones ? h('select', { id: 'hours-time-zone', 'data-testid': 'hours-time-zone' })
    : h('input', { type: 'text', id: 'hours-time-zone', 'data-testid': 'hours-time-zone', autocomplete: 'off', spellcheck: 'false',
      autocapitalize: 'off', maxlength: '64', placeholder: 'Europe/Moscow' });
  if (zones) for (const z of zones) zone.append(h('option', { value: z }, z));
  const mine = browserZone();
  zone.setAttribute('aria-describedby', 'hours-time-zone-hint hours-time_zone-error');
  const zoneField = h('div', { class: 'field' }, h('label', { for: 'hours-time-zone' }, t('hours_time_zone')), zone,
    h('p', { class: 'field-hint', id: 'hours-time-zone-hint' }, mine ? t('hours_time_zone_hint_browser', { zone: mine }) : t('hours_time_zone_hint')),
    errorLine('time_zone'));

  // ---- the week ----
  const weekSet = h('fieldset', { class: 'hours-group', 'data-testid': 'hours-week', 'aria-describedby': 'hours-week-hint hours-week-error' },
    h('legend', null, t('hours_week')),
    h('p', { class: 'field-hint', id: 'hours-week-hint' }, t('hours_week_hint')),
    errorLine('week'));
  for (const day of DAYS) {
    const list = h('ul', { class: 'hours-intervals' });
    const empty = h('p', { class: 'muted small hours-closed', 'data-testid': 'hours-day-closed' }, t('hours_day_closed'));
    const add = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'hours-add-interval',
      'aria-label': t('hours_add_interval_named', { day: t(`day_${day}`) }), onclick: () => {
        const row = intervalRow(week[day], t(`day_${day}`), ['09:00', '18:00']);
        row.start.focus();
      } }, t('hours_add_interval'));
    const group = h('fieldset', { class: 'hours-day', 'data-testid': `hours-day-${day}`, 'data-day': day },
      h('legend', null, t(`day_${day}`)), empty, list, h('div', { class: 'hours-day-actions' }, add));
    week[day] = { group, list, empty, rows: [], addButton: add };
    weekSet.append(group);
  }
  const copy = h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'hours-copy-monday', onclick: () => {
    const from = readIntervals(week.mon);
    for (const day of ['tue', 'wed', 'thu', 'fri']) {
      clearRows(week[day]);
      for (const pair of from) intervalRow(week[day], t(`day_${day}`), pair);
    }
    say(msg, t('hours_copied'), 'ok');
  } }, t('hours_copy_monday'));
  weekSet.append(h('div', { class: 'form-actions' }, copy));

  // ---- dates off ----
  const offList = h('ul', { class: 'hours-dates', 'data-testid': 'hours-dates-off-list' });
  const offEmpty = h('p', { class: 'muted small' }, t('hours_no_dates_off'));
  const offSet = h('fieldset', { class: 'hours-group', 'data-testid': 'hours-dates-off', 'aria-describedby': 'hours-dates-off-hint hours-dates_off-error' },
    h('legend', null, t('hours_dates_off')),
    h('p', { class: 'field-hint', id: 'hours-dates-off-hint' }, t('hours_dates_off_hint')),
    errorLine('dates_off'), offEmpty, offList,
    h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'hours-add-date-off',
      onclick: () => offRow('').input.focus() }, t('hours_add_date_off'))));

  // ---- special dates ----
  const specialList = h('div', { class: 'hours-special-list' });
  const specialEmpty = h('p', { class: 'muted small' }, t('hours_no_special_dates'));
  const specialSet = h('fieldset', { class: 'hours-group', 'data-testid': 'hours-special-dates',
    'aria-describedby': 'hours-special-hint hours-special_dates-error' },
  h('legend', null, t('hours_special_dates')),
  h('p', { class: 'field-hint', id: 'hours-special-hint' }, t('hours_special_dates_hint')),
  errorLine('special_dates'), specialEmpty, specialList,
  h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'hours-add-special-date',
    onclick: () => specialRow('', [['10:00', '15:00']]).date.focus() }, t('hours_add_special_date'))));

  // ---- timers ----
  const timerSet = h('fieldset', { class: 'hours-group', 'data-testid': 'hours-timers' },
    h('legend', null, t('hours_timers')),
    h('p', { class: 'field-hint' }, t('hours_timers_hint')));
  for (const tm of TIMERS) {
    const id = `hours-${tm.name}`;
    const input = h('input', { type: 'number', id, min: '1', max: String(tm.max), step: '1', inputmode: 'numeric',
      class: 'hours-number', 'data-testid': id, 'aria-describedby': `${id}-hint hours-${tm.name}-error` });
    const off = h('input', { type: 'checkbox', id: `${id}-off`, 'data-testid': `${id}-off`, 'aria-controls': id });
    off.addEventListener('change', () => {
      input.disabled = off.checked;
      if (!off.checked && !input.value) input.value = String(tm.fallback);
    });
    timers[tm.name] = { input, off, fallback: tm.fallback };
    timerSet.append(h('div', { class: 'field hours-timer' },
      h('label', { for: id }, t(`hours_${tm.name}`)),
      h('div', { class: 'hours-timer-row' }, input, h('span', { class: 'muted' }, t(`hours_${tm.name}_unit`)),
        h('label', { class: 'check hours-off', for: `${id}-off` }, off, h('span', null, t('hours_timer_off')))),
      h('p', { class: 'field-hint', id: `${id}-hint` }, t(`hours_${tm.name}_hint`, { max: tm.max })),
      errorLine(tm.name)));
  }

  const msg = h('p', { class: 'form-message', role: 'status', 'aria-live': 'polite', 'data-testid': 'hours-message' });
  const save = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'hours-save' }, t('save'));
  const form = h('form', { class: 'card hours-form', novalidate: true, 'data-testid': 'hours-form', 'aria-labelledby': 'hours-form-title', onsubmit: onSave },
    h('h4', { id: 'hours-form-title' }, t('hours_form_title')),
    showAnySet, zoneField, weekSet, offSet, specialSet, timerSet,
    h('div', { class: 'form-actions sticky-actions' }, save, msg));
  showAny.addEventListener('change', drawShowAny);

  node.append(h('p', { class: 'muted' }, t('hours_intro')), status, form);
  fill(current);
  drawStatus();

  // ---- building blocks ----
  function errorLine(name) {
    const el = h('p', { class: 'field-error', id: `hours-${name}-error`, 'data-testid': `hours-${name}-error` });
    errors[name] = el;
    return el;
  }

  /** One [start, end] row in `owner` ({list, rows, empty}); `label` names its day or date for screen readers. */
  function intervalRow(owner, label, [start, end]) {
    const n = owner.rows.length + 1;
    const startInput = h('input', { type: 'time', class: 'hours-time', 'data-testid': 'hours-start', value: toClock(start), required: true });
    const endInput = h('input', { type: 'time', class: 'hours-time', 'data-testid': 'hours-end', value: toClock(end), required: true });
    const overnight = h('span', { class: 'hours-overnight', 'data-testid': 'hours-overnight', hidden: true });
    const sId = uid('hours-start'), eId = uid('hours-end');
    startInput.id = sId; endInput.id = eId;
    const remove = h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'hours-remove-interval' }, t('remove'));
    const li = h('li', { class: 'hours-interval', 'data-testid': 'hours-interval' },
      h('label', { for: sId, class: 'hours-time-label' }, t('hours_from')), startInput,
      h('label', { for: eId, class: 'hours-time-label' }, t('hours_to')), endInput, overnight, remove);
    const row = { li, start: startInput, end: endInput, overnight, remove };
    const relabel = () => {
      const i = owner.rows.indexOf(row) + 1 || n;
      startInput.setAttribute('aria-label', t('hours_start_named', { where: label, n: i }));
      endInput.setAttribute('aria-label', t('hours_end_named', { where: label, n: i }));
      remove.setAttribute('aria-label', t('hours_remove_interval_named', { where: label, n: i }));
    };
    const drawOvernight = () => {
      const s = startInput.value, e = endInput.value;
      const crosses = !!(s && e && e <= s);
      overnight.hidden = !crosses;
      overnight.textContent = crosses ? (e === '00:00' ? t('hours_until_midnight') : t('hours_crosses_midnight', { end: e })) : '';
      li.classList.toggle('is-overnight', crosses);
    };
    startInput.addEventListener('input', drawOvernight);
    endInput.addEventListener('input', drawOvernight);
    remove.addEventListener('click', () => {
      const i = owner.rows.indexOf(row);
      const next = owner.rows[i + 1] || owner.rows[i - 1];
      owner.rows.splice(i, 1);
      li.remove();
      owner.rows.forEach((r) => r.relabel());
      drawEmpty(owner);
      (next ? next.start : owner.addButton).focus();
    });
    row.relabel = relabel;
    owner.rows.push(row);
    owner.list.append(li);
    relabel();
    drawOvernight();
    drawEmpty(owner);
    return row;
  }

  function drawEmpty(owner) { if (owner.empty) owner.empty.hidden = owner.rows.length > 0; }
  function clearRows(owner) { owner.rows.length = 0; clear(owner.list); drawEmpty(owner); }
  function readIntervals(owner) { return owner.rows.map((r) => [r.start.value, r.end.value]); }

  function offRow(value) {
    const input = h('input', { type: 'date', class: 'hours-date', 'data-testid': 'hours-date-off', value: value || '', required: true });
    input.id = uid('hours-date-off');
    const remove = h('button', { class: 'btn btn-small btn-ghost', type: 'button', 'data-testid': 'hours-remove-date-off' }, t('remove'));
    const li = h('li', { class: 'hours-date-row', 'data-testid': 'hours-date-off-row' },
      h('label', { for: input.id, class: 'visually-hidden' }, t('hours_date_off_label', { n: offRows.length + 1 })), input, remove);
    const row = { li, input };
    const relabel = () => remove.setAttribute('aria-label', t('hours_remove_date_named', { date: input.value || t('hours_date_empty') }));
    input.addEventListener('input', relabel);
    remove.addEventListener('click', () => {
      offRows.splice(offRows.indexOf(row), 1);
      li.remove();
      offEmpty.hidden = offRows.length > 0;
      offSet.querySelector('[data-testid=hours-add-date-off]').focus();
    });
    relabel();
    offRows.push(row);
    offList.append(li);
    offEmpty.hidden = true;
    return row;
  }

  function specialRow(dateValue, intervals) {
    const date = h('input', { type: 'date', class: 'hours-date', 'data-testid': 'hours-special-date', value: dateValue || '', required: true });
    date.id = uid('hours-special-date');
    const list = h('ul', { class: 'hours-intervals' });
    const empty = h('p', { class: 'muted small hours-closed' }, t('hours_special_closed'));
    const owner = { list, empty, rows: [] };
    const where = () => date.value || t('hours_date_empty');
    const add = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'hours-add-interval', onclick: () => {
      intervalRow(owner, where(), ['10:00', '15:00']).start.focus();
    } }, t('hours_add_interval'));
    owner.addButton = add;
    const remove = h('button', { class: 'btn btn-small btn-ghost btn-danger', type: 'button', 'data-testid': 'hours-remove-special-date' },
      t('hours_remove_special_date'));
    const group = h('fieldset', { class: 'hours-day hours-special', 'data-testid': 'hours-special-row' },
      h('legend', null, t('hours_special_date_legend', { n: specialRows.length + 1 })),
      h('div', { class: 'field hours-special-date-field' }, h('label', { for: date.id }, t('hours_special_date')), date),
      empty, list, h('div', { class: 'hours-day-actions' }, add, remove));
    const row = { li: group, date, list, owner };
    const relabel = () => {
      add.setAttribute('aria-label', t('hours_add_interval_named', { day: where() }));
      remove.setAttribute('aria-label', t('hours_remove_special_named', { date: where() }));
    };
    date.addEventListener('input', relabel);
    remove.addEventListener('click', () => {
      specialRows.splice(specialRows.indexOf(row), 1);
      group.remove();
      specialEmpty.hidden = specialRows.length > 0;
      specialSet.querySelector('[data-testid=hours-add-special-date]').focus();
    });
    relabel();
    for (const pair of intervals) intervalRow(owner, where(), pair);
    drawEmpty(owner);
    specialRows.push(row);
    specialList.append(group);
    specialEmpty.hidden = true;
    return row;
  }

  /** The week, dates and special dates only matter while "show any time" is off: dimmed, still editable. */
  function drawShowAny() {
    for (const el of [weekSet, offSet, specialSet]) el.classList.toggle('hours-unused', showAny.checked);
  }

  /** The form from what the server has. */
  function fill(s) {
    showAny.checked = !!s.show_any_time;
    if (zones && ![...zone.options].some((o) => o.value === s.time_zone)) zone.append(h('option', { value: s.time_zone }, s.time_zone));
    zone.value = s.time_zone || 'UTC';
    for (const day of DAYS) {
      clearRows(week[day]);
      for (const pair of (s.week && s.week[day]) || []) intervalRow(week[day], t(`day_${day}`), pair);
    }
    offRows.length = 0; clear(offList);
    for (const d of s.dates_off || []) offRow(d);
    offEmpty.hidden = offRows.length > 0;
    specialRows.length = 0; clear(specialList);
    for (const [d, pairs] of Object.entries(s.special_dates || {})) specialRow(d, pairs);
    specialEmpty.hidden = specialRows.length > 0;
    for (const tm of TIMERS) {
      const { input, off } = timers[tm.name];
      const v = s[tm.name];
      off.checked = v === null;
      input.disabled = v === null;
      input.value = v === null || v === undefined ? '' : String(v);
    }
    drawShowAny();
  }

  /** A number input's value: an integer when it is one, else the text as typed (the server names it). */
  function timerValue({ input, off }) {
    if (off.checked) return null;
    const v = input.value.trim();
    return /^\d+$/.test(v) ? Number(v) : v;
  }

  function body() {
    const out = { show_any_time: showAny.checked, time_zone: zone.value.trim(), week: {}, dates_off: [], special_dates: {} };
    for (const day of DAYS) {
      const pairs = readIntervals(week[day]);
      if (pairs.length) out.week[day] = pairs;   // a missing weekday is closed
    }
    out.dates_off = offRows.map((r) => r.input.value);
    for (const r of specialRows) out.special_dates[r.date.value] = readIntervals(r.owner);
    for (const tm of TIMERS) out[tm.name] = timerValue(timers[tm.name]);
    return out;
  }

  function clearErrors() {
    for (const el of Object.values(errors)) el.textContent = '';
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const el of form.querySelectorAll('.hours-invalid')) el.classList.remove('hours-invalid');
  }

  /** `field`'s error line gets our words and the server's detail; the place it names is marked. */
  function fieldError(field, detail) {
    clear(errors[field]).append(t(`hours_err_${field}`), ' ', h('span', { class: 'field-error-detail' }, detail || ''));
    let target = null;
    if (field === 'week') {
      const m = /^week\.(mon|tue|wed|thu|fri|sat|sun)\b/.exec(detail || '');
      const group = m ? week[m[1]].group : weekSet;
      group.classList.add('hours-invalid');
      for (const input of group.querySelectorAll('input')) input.setAttribute('aria-invalid', 'true');
      target = group.querySelector('input') || group.querySelector('button');
    } else if (field === 'time_zone') {
      zone.setAttribute('aria-invalid', 'true'); target = zone;
    } else if (field === 'show_any_time') {
      target = showAny;
    } else if (timers[field]) {
      timers[field].input.setAttribute('aria-invalid', 'true'); target = timers[field].input;
    } else {
      const set = field === 'dates_off' ? offSet : specialSet;
      const m = /^(?:dates_off|special_dates)(?:\[(\d+)\]|\.(\d{4}-\d{2}-\d{2}|[^:[]*))/.exec(detail || '');
      let place = null;
      if (m && m[1] !== undefined && field === 'dates_off') place = offRows[Number(m[1])]?.li;
      if (m && m[2] !== undefined && field === 'special_dates') place = specialRows.find((r) => r.date.value === m[2])?.li;
      (place || set).classList.add('hours-invalid');
      for (const input of (place || set).querySelectorAll('input')) input.setAttribute('aria-invalid', 'true');
      target = (place || set).querySelector('input') || set.querySelector('button');
    }
    say(msg, t('hours_check_field', { field: t(`hours_field_${field}`) }));
    if (target) target.focus();
  }

  function showError(err) {
    const m = /^(.+)_invalid$/.exec(err.code || '');
    if (err.status === 422 && m && FIELDS.includes(m[1])) { fieldError(m[1], err.message); return; }
    say(msg, err.message || t('network_error'));
  }

  /** What the page can tell before asking: a special date given twice would silently become one. */
  function localCheck() {
    const seen = new Set();
    for (const r of specialRows) {
      if (r.date.value && seen.has(r.date.value)) return ['special_dates', t('hours_duplicate_date', { date: r.date.value })];
      seen.add(r.date.value);
    }
    return null;
  }

  async function onSave(e) {
    e.preventDefault();
    save.disabled = true; say(msg, ''); clearErrors();
    const local = localCheck();
    if (local) { fieldError(...local); save.disabled = false; return; }
    try {
      current = await api('PUT', '/api/project/schedule', body(), { idempotencyKey: uuid() });
      fill(current);
      say(msg, t('saved'), 'ok');
      drawStatus();
      clearTimeout(statusTimer);
      statusTimer = setTimeout(() => { if (node.isConnected) drawStatus(); }, STATUS_RECHECK_MS);
    } catch (err) { showError(err); }
    save.disabled = false;
  }

  /** "Open now" / "Closed — opens …" from what the widget is told; no line when it says nothing. */
  async function drawStatus() {
    if (!projectId) return;
    let config;
    try { config = await api('GET', `/api/widget/config?project=${encodeURIComponent(projectId)}`); } catch { status.hidden = true; return; }
    if (!config || typeof config.open !== 'boolean') { status.hidden = true; return; }
    status.dataset.open = String(config.open);
    const badge = h('span', { class: `status ${config.open ? 'status-in_work' : 'status-closed'}` },
      config.open ? t('hours_open_now') : t('hours_closed_now'));
    clear(status).append(badge);
    if (!config.open) {
      status.append(' ', config.next_open_at
        ? h('span', { 'data-at': config.next_open_at }, t('hours_opens_at', { when: formatIn(config.next_open_at, current.time_zone), zone: current.time_zone }))
        : h('span', null, t('hours_never_opens')));
    }
    status.hidden = false;
  }
}
