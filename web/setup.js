// The first-run page (/setup): the project and its owner in one form. The server checks
// every field (422 `<field>_invalid`, shown beside the field); here only the two
// passwords are compared and the project id is suggested from the name.
const form = document.getElementById('setup');
const token = new URLSearchParams(location.search).get('token') || '';
const input = (id) => document.getElementById(id);
const FIELDS = ['project_name', 'project_id', 'language', 'owner_name', 'owner_email', 'password', 'password2'];

// "ACME Shop" -> "acme-shop"; the owner may type another id, and then it is theirs.
let idEdited = false;
const slug = (name) => name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
  .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
input('project_name').addEventListener('input', () => { if (!idEdited) input('project_id').value = slug(input('project_name').value); });
input('project_id').addEventListener('input', () => { idEdited = input('project_id').value !== ''; });

function showErrors(errors, general = '') {
  for (const field of FIELDS) {
    const text = errors[field] || '';
    input(`${field}-error`).textContent = text;
    input(field).setAttribute('aria-invalid', text ? 'true' : 'false');
  }
  input('setup-error').textContent = general;
  const first = FIELDS.find((f) => errors[f]);
  if (first) input(first).focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (input('password').value !== input('password2').value) {
    showErrors({ password2: 'The two passwords differ.' });
    return;
  }
  const body = { token };
  for (const field of ['project_name', 'project_id', 'language', 'owner_name', 'owner_email', 'password']) body[field] = input(field).value;
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    const response = await fetch('/setup', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body), credentials: 'same-origin' });
    if (response.status === 201) {
      // Logged in (the session cookie came with the answer): straight to the snippet. The
      // app asks for its session only where it has signed in before (app.js, SIGNED_IN).
      try { localStorage.setItem('parley.signed_in', '1'); } catch { /* private mode: the login form */ }
      location.assign('/app#/settings/chat');
      return;
    }
    const error = ((await response.json().catch(() => ({}))).error) || {};
    const field = (error.code || '').replace(/_invalid$/, '');
    if (error.code && error.code.endsWith('_invalid') && FIELDS.includes(field)) showErrors({ [field]: error.message });
    else if (response.status === 404 || error.code === 'setup_already_done') showErrors({}, 'This installation is set up already: log in at /app.');
    else showErrors({}, error.message || `The server answered ${response.status}; try again.`);
  } catch (e) {
    showErrors({}, 'The server could not be reached; try again.');
  } finally {
    button.disabled = false;
  }
});
input('project_name').focus();
