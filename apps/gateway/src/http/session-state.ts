import type { IncomingMessage } from 'node:http';

/**
 * The user of a fully signed-in session, or undefined. Every guard asks here (pages, /api/v1 sessions,
 * CSRF, the Socket.IO handshake), so a second sign-in step changes only this function. It takes the
 * bare IncomingMessage because the Socket.IO handshake runs the same session chain without Express.
 */
export function sessionUser(req: IncomingMessage): Express.User | undefined {
  // passport's logout leaves `user` null, not undefined.
  return (req as IncomingMessage & { user?: Express.User | null }).user ?? undefined;
}

/** Whether the request's session is fully signed in (see {@link sessionUser}). */
export function isFullySignedIn(req: IncomingMessage): boolean {
  return sessionUser(req) !== undefined;
}
