// /ws/operator: live pushes, reconnect with backoff, and a resync after every reconnect.
import { api } from './api.js';

/**
 * startLive({onMessage, onResync, onState, onRevoked}) -> stop()
 *   onMessage(msg)    every push (conversation_event, notification, hello)
 *   onResync()        after a reconnect: re-fetch what may have been missed; may return a promise
 *   onState(state)    'connecting' | 'online' | 'offline' | 'resynced'
 *   onRevoked()       the session ended (session_revoked / close 4401 / 401 at reconnect)
 * A close with 4403 means this operator's role changed: the app reloads, so every page
 * and view is drawn for the new role.
 * stop.watchVisitors(on): whether the app shows the live visitors (their changes are
 * pushed only then); said again after every reconnect.
 */
export function startLive({ onMessage, onResync, onState, onRevoked }) {
  let ws = null, stopped = false, attempt = 0, timer = null, everOpened = false, wasDown = false, watching = false;
  const say = (msg) => { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); };

  function connect() {
    if (stopped) return;
    onState(everOpened ? 'offline' : 'connecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/operator`;
    try { ws = new WebSocket(url); } catch { schedule(); return; }
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = async (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (msg.type === 'session_revoked') { stop(); onRevoked(); return; }
      if (msg.type === 'hello') {
        attempt = 0;
        const resync = everOpened || wasDown;
        everOpened = true; wasDown = false;
        onState('online');
        if (watching) say({ type: 'watch_visitors', on: true });
        if (resync) {
          try { await onResync(); onState('resynced'); } catch { /* the next reconnect tries again */ }
        }
      }
      onMessage(msg);
    };
    ws.onclose = async (e) => {
      ws = null;
      if (stopped) return;
      if (e.code === 4401) { stop(); onRevoked(); return; }
      if (e.code === 4403) { stop(); location.reload(); return; }
      if (opened || everOpened) wasDown = true;
      onState('offline');
      if (!opened) {
        // The upgrade failed: maybe the session is gone (401), maybe the network is.
        try { await api('GET', '/api/session', undefined, { quiet401: true }); } catch (err) {
          if (err.status === 401) { stop(); onRevoked(); return; }
        }
      }
      schedule();
    };
  }

  function schedule() {
    if (stopped) return;
    attempt += 1;
    const delay = Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.75 + Math.random() * 0.5);
    clearTimeout(timer);
    timer = setTimeout(connect, delay);
  }

  // When the browser says the network is back, do not wait for the backoff; when it says
  // the network is gone, do not wait for the heartbeat to notice the socket is dead.
  function online() { if (!ws && !stopped) { attempt = 0; clearTimeout(timer); connect(); } }
  function offline() { if (ws) ws.close(4000, 'offline'); }
  window.addEventListener('online', online);
  window.addEventListener('offline', offline);

  function stop() {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener('online', online);
    window.removeEventListener('offline', offline);
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
  }

  stop.watchVisitors = (on) => { watching = on; say({ type: 'watch_visitors', on }); };
  connect();
  return stop;
}
