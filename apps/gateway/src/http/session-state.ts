import type { IncomingMessage } from 'node:http';
import type { SessionData } from 'express-session';

/** How long a session may wait between the password and the second factor. */
export const MFA_PENDING_MS = 5 * 60_000;

type SessionRequest = IncomingMessage & {
  user?: Express.User | null;
  session?: Partial<SessionData>;
};

/**
 * The user of a fully signed-in session, or undefined. Every guard asks here (pages, /api/v1 sessions,
 * CSRF, the Socket.IO handshake), so the second sign-in step changes only this function. It takes the
 * bare IncomingMessage because the Socket.IO handshake runs the same session chain without Express.
 *
 * A session whose password was accepted but whose second factor was not yet (`mfaPending`) is not
 * signed in: it never gets a passport user until the second step passes (which regenerates the session
 * id), and the pending mark is checked here as well, so that no later change can make a half-signed-in
 * session count as signed in.
 */
export function sessionUser(req: IncomingMessage): Express.User | undefined {
  const r = req as SessionRequest;
  if (r.session?.mfaPending) return undefined;
  // passport's logout leaves `user` null, not undefined.
  return r.user ?? undefined;
}

/** Whether the request's session is fully signed in (see {@link sessionUser}). */
export function isFullySignedIn(req: IncomingMessage): boolean {
  return sessionUser(req) !== undefined;
}

/**
 * The session's sign-in waiting for its second factor (`enrol`: for the enrolment of a first one, with
 * MFA_REQUIRED), unless it has expired.
 */
export function pendingSecondFactor(
  req: IncomingMessage,
): { userId: string; username: string; enrol: boolean } | undefined {
  const pending = (req as SessionRequest).session?.mfaPending;
  if (!pending || Date.now() - pending.since > MFA_PENDING_MS) return undefined;
  return { userId: pending.userId, username: pending.username, enrol: pending.enrol === true };
}
