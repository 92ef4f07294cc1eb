// The end of the page's session (logout in another tab, idle or absolute timeout): said once, in words a
// user acts on, and every section that could still send something stops.
import { setLive } from './live-status.js';
import { announce, dom } from './page.js';

/** What a user reads wherever the session's end shows (the banner, a failed card, a toast). */
export const SIGNED_OUT_MESSAGE = 'You were signed out — sign in again.';

const listeners = [];
let ended = false;

export function isSignedOut() {
  return ended;
}

/** Runs `fn` once the session has ended (the uploads stop, the socket closes). */
export function onSignedOut(fn) {
  listeners.push(fn);
}

/** The server said 401 (or ended this page's socket and the REST check agreed): shows the banner once. */
export function signedOut() {
  if (ended) return;
  ended = true;
  setLive('offline', 'Signed out');
  dom.signedOut.hidden = false;
  dom.dropZone.disabled = true;
  dom.dropZone.setAttribute('aria-describedby', 'signed-out');
  announce(SIGNED_OUT_MESSAGE);
  for (const fn of listeners) fn();
}
