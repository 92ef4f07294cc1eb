// The REST client: same-origin JSON calls with the CSRF header on unsafe methods, and the server's JSON
// error message (or a plain description of the status) as the error text.
import { setLive } from './live-status.js';
import { csrfToken } from './page.js';
import { toast } from './toasts.js';

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let sessionEndedShown = false;

function sessionEnded() {
  if (sessionEndedShown) return;
  sessionEndedShown = true;
  setLive('offline', 'Signed out');
  toast('error', 'Session ended', 'Your session has ended; nothing more can be uploaded from this page.', {
    href: '/login',
    text: 'Sign in again',
  });
}

export function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** The server's JSON `message` when it sent one, else a plain description of the status. */
export function errorMessage(status, body) {
  if (status === 401) sessionEnded();
  if (body && typeof body.message === 'string' && body.message) return body.message;
  if (status === 0) return 'The server could not be reached. Check the connection and try again.';
  if (status === 401) return 'Your session has ended. Sign in again.';
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
