// Fetch wrapper for the gateway's REST API. The session is the HttpOnly cookie (same origin).
import { uuid } from './dom.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

async function errorOf(response) {
  let code = `http_${response.status}`, message = '';
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch { /* not JSON */ }
  return new ApiError(response.status, code, message || `${response.status} ${response.statusText}`);
}

/**
 * api('POST', '/api/…', body, {idempotencyKey, quiet401}) -> parsed JSON (null for 204).
 * Throws ApiError (status 0 when the network failed).
 */
export async function api(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  // Writes always say JSON (the gateway refuses cookie-authenticated writes a foreign
  // page's form could send); a file goes as octet-stream, whatever its type: the server
  // checks files by content.
  if (body instanceof Blob) headers['Content-Type'] = 'application/octet-stream';
  else if (body !== undefined || method !== 'GET') headers['Content-Type'] = 'application/json';
  if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : body instanceof Blob ? body : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', '');
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && !options.quiet401) onUnauthenticated(error);
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Upload a file with progress (XHR: fetch has no upload progress). Resolves to the JSON body. */
export function upload(path, file, { onProgress, method = 'POST', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');  // checked by content on the server
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(body); return; }
      const err = body && body.error ? body.error : {};
      if (xhr.status === 401) onUnauthenticated();
      reject(new ApiError(xhr.status, err.code || `http_${xhr.status}`, err.message || `${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', ''));
    xhr.send(file);
  });
}

/** X-File-Name is percent-encoded (the gateway decodes it): header values must be ASCII. */
export function fileNameHeader(name) {
  return encodeURIComponent(name);
}

export { uuid };
