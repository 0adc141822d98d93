// Verified visitors (issue 13, item 5), for admins: the project's identity secret (made on
// first view), how to use it, and a rotate button (two steps, no browser dialog). One
// section of the settings page, loaded on demand. API strings go in as text.
import { api } from './api.js';
import { h, clear } from './dom.js';
import { t, formatDateTime } from './i18n.js';

export async function identitySection(node) {
  const secret = h('input', { id: 'identity-secret', type: 'text', readonly: true, class: 'mono', 'data-testid': 'identity-secret',
    size: '70', spellcheck: 'false' });
  const created = h('p', { class: 'muted small' });
  const status = h('p', { class: 'form-message', role: 'status' });
  const example = h('pre', { class: 'snippet', 'data-testid': 'identity-example' });
  const rotate = h('button', { class: 'btn', type: 'button', 'data-testid': 'identity-rotate' }, t('identity_rotate'));
  let armed = false;

  function show(data) {
    secret.value = data.secret;
    created.textContent = t('identity_created', { when: formatDateTime(data.created_at) });
    example.textContent = [
      '# on your server (Python)',
      `hash = hmac.new(b"${data.secret}", str(user.id).encode(), hashlib.sha256).hexdigest()`,
      '',
      '<!-- on the page, after the Parley snippet -->',
      '<script>(window.ParleyQueue = window.ParleyQueue || []).push(',
      '  ["identify", {id: "USER_ID", name: "USER_NAME", email: "USER_EMAIL", hash: "HASH"}]);</script>',
    ].join('\n');
  }
  rotate.addEventListener('click', async () => {
    if (!armed) { armed = true; rotate.textContent = t('identity_rotate_confirm'); rotate.classList.add('btn-danger'); return; }
    armed = false; rotate.disabled = true;
    try {
      show(await api('POST', '/api/project/identity-secret/rotate', {}));
      status.textContent = t('identity_rotated');
    } catch (e) { status.textContent = e.message || t('network_error'); }
    rotate.disabled = false; rotate.textContent = t('identity_rotate'); rotate.classList.remove('btn-danger');
  });
  node.append(h('p', { class: 'field-hint' }, t('identity_help')),
    h('label', { for: 'identity-secret' }, t('identity_secret')), secret, created, rotate, status, example);
  show(await api('GET', '/api/project/identity-secret'));
  clear(status);
}
