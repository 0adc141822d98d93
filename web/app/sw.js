// Parley operator app service worker: keeps the app shell so the app starts offline and
// opens in its own window. Only the shell files are cached; /api, /ws, /files and
// /avatars always go to the network and are never cached.
const CACHE = 'parley-app-v11';
const SHELL = [
  '/app/',
  '/app/static/app.css',
  '/app/static/app.js',
  '/app/static/api.js',
  '/app/static/dom.js',
  '/app/static/i18n.js',
  '/app/static/store.js',
  '/app/static/live.js',
  '/app/static/inbox.js',
  '/app/static/conversation.js',
  '/app/static/notify.js',
  '/app/static/settings.js',
  '/app/static/crm.js',
  '/app/static/hours.js',
  '/app/static/presence.js',
  '/app/static/offers.js',
  '/app/static/assignment.js',
  '/app/static/ratings.js',
  '/app/static/identity.js',
  '/app/static/privacy.js',
  '/app/static/audit.js',
  '/app/static/security.js',
  '/app/static/template_vars.js',
  '/app/static/notification_settings.js',
  '/app/static/search.js',
  '/app/static/manifest.webmanifest',
  '/app/static/icons/icon-192.png',
  '/app/static/icons/icon-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('parley-app-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

function shellKey(url) {
  if (url.origin !== self.location.origin) return null;
  if (url.pathname === '/app' || url.pathname === '/app/') return '/app/';
  return SHELL.includes(url.pathname) ? url.pathname : null;
}

// Network first (a deploy shows up on the next load), the cached shell when offline.
self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const key = shellKey(new URL(request.url));
  if (!key) return; // API and everything else: straight to the network, never cached
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      if (response.ok) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(key, copy));
      }
      return response;
    } catch (err) {
      const cached = await caches.match(key);
      if (cached) return cached;
      throw err;
    }
  })());
});

// A click on a desktop notification shown through the worker focuses the app.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: 'window' }).then((windows) => {
    const win = windows.find((w) => new URL(w.url).pathname.startsWith('/app'));
    return win ? win.focus() : self.clients.openWindow('/app/');
  }));
});
