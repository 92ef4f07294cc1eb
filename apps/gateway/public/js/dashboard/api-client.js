// The REST client: same-origin JSON calls with the CSRF header on unsafe methods, and the server's JSON
// error message (or a plain description of the status) as the error text.
import { csrfToken } from './page.js';
import { SIGNED_OUT_MESSAGE, signedOut } from './session.js';

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** The server's JSON `message` when it sent one, else a plain description of the status; a 401 ends the page's session. */
export function errorMessage(status, body) {
  // A 401 here is always the session's end: the API's wording (meant for API clients) is not for this page.
  if (status === 401) {
    signedOut();
    return SIGNED_OUT_MESSAGE;
  }
  if (body && typeof body.message === 'string' && body.message) return body.message;
  if (status === 0) return 'The server could not be reached. Check the connection and try again.';
  return `The server answered ${status}.`;
}

/** One JSON call; `body` (optional) is sent as JSON. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError(0, errorMessage(0, null));
  }
  if (res.status === 204) return null;
  const answer = parseJson(await res.text());
  if (!res.ok) throw new ApiError(res.status, errorMessage(res.status, answer));
  return answer;
}
