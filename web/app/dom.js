// Tiny DOM helpers. Text always goes in as text nodes / textContent, never as HTML.

/** h('button', {class: 'x', onclick: fn, 'data-testid': 't'}, 'label', childNode) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'text') el.textContent = value;
      else if (key === 'value') el.value = value;
      else if (key === 'checked' || key === 'disabled' || key === 'hidden' || key === 'selected') el[key] = !!value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  appendAll(el, children);
  return el;
}

/** Appends children as h() does: null, undefined and false are skipped, arrays flattened. */
export function append(el, ...children) { appendAll(el, children); return el; }

function appendAll(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendAll(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function $(selector, root = document) { return root.querySelector(selector); }

/** A safe link for a URL given by a visitor: only http(s), opened in a new tab, no referrer. */
export function safeLink(url, label) {
  let parsed = null;
  try { parsed = new URL(url); } catch { /* not a URL */ }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    return h('span', { class: 'url' }, String(url));
  }
  return h('a', { class: 'url', href: parsed.href, target: '_blank', rel: 'noopener noreferrer' }, label || String(url));
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

/** An avatar image, or the initials in a circle when there is none. */
export function avatar(name, url, size = 'md') {
  if (url) return h('img', { class: `avatar avatar-${size}`, src: url, alt: '', width: 32, height: 32, loading: 'lazy' });
  return h('span', { class: `avatar avatar-${size} avatar-initials`, 'aria-hidden': 'true' }, initials(name));
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Focus trap + Escape for a dialog-like element; returns a function that releases it. */
export function trapFocus(container, onEscape) {
  const previous = document.activeElement;
  function onKey(e) {
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); onEscape(); return; }
    if (e.key !== 'Tab') return;
    const items = [...container.querySelectorAll('button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])')]
      .filter((x) => !x.disabled && x.offsetParent !== null);
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  }
  container.addEventListener('keydown', onKey);
  return () => {
    container.removeEventListener('keydown', onKey);
    if (previous && previous.isConnected && previous.focus) previous.focus();
  };
}

const ICONS = {
  clock: ['M12 7v5l3 2', 'circle:12,12,9'],
  clip: ['M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9'],
  lock: ['rect:5,11,14,10', 'M8 11V7a4 4 0 0 1 8 0v4'],
  back: ['M15 18l-6-6 6-6'],
  bolt: ['M13 2L4 14h7l-1 8 9-12h-7z'],
  chat: ['M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z'],
};

/** A small stroke icon (SVG built with the DOM - no markup strings). Decorative: aria-hidden. */
export function icon(name) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const part of ICONS[name] || []) {
    let el;
    if (part.startsWith('circle:')) {
      const [cx, cy, r] = part.slice(7).split(',');
      el = document.createElementNS(NS, 'circle');
      el.setAttribute('cx', cx); el.setAttribute('cy', cy); el.setAttribute('r', r);
    } else if (part.startsWith('rect:')) {
      const [x, y, w, hh] = part.slice(5).split(',');
      el = document.createElementNS(NS, 'rect');
      el.setAttribute('x', x); el.setAttribute('y', y); el.setAttribute('width', w); el.setAttribute('height', hh);
      el.setAttribute('rx', '2');
    } else {
      el = document.createElementNS(NS, 'path');
      el.setAttribute('d', part);
    }
    svg.append(el);
  }
  return svg;
}
