import 'express-session';

declare global {
  namespace Express {
    /** What passport attaches to an authenticated request (session or bearer token). */
    interface User {
      id: string;
      username: string;
      /** Set by the session and bearer lookups on every request (docs/security.md item 37). */
      role?: 'user' | 'admin';
      /**
       * The user's own quota overrides as the bearer lookup read them (with the same query, on every
       * request), so an upload needs no second look-up; absent for a session.
       */
      quota?: { quotaBytes: number | null; quotaFiles: number | null };
    }
    interface Request {
      /** How the request was authenticated on /api/v1. */
      authMethod?: 'session' | 'token';
    }
  }
}

declare module 'express-session' {
  interface SessionData {
    /** When the user logged in (ms since epoch), for the absolute session timeout. */
    authenticatedAt?: number;
    /**
     * Password accepted, second factor not yet (docs/security.md item 30): the session has no passport
     * user, so nothing but the second-factor page works with it; it expires after MFA_PENDING_MS.
     * `enrol` (MFA_REQUIRED): the account has no factor yet and the enrolment page is all it may reach.
     */
    mfaPending?: { userId: string; username: string; since: number; enrol?: true };
    /**
     * Who signed in (client address and user agent at sign-in), for the security page's session list.
     */
    client?: { ip: string; userAgent: string };
    /** The session's last request (ms since epoch), rewritten at most once a minute. */
    lastSeenAt?: number;
    /** An admin's new invite link, shown once on the next invites page. */
    inviteLink?: string;
    /** Until when (ms since epoch) the admin confirmed actions on the queue dashboard (/admin/queue-actions). */
    queueActionsUntil?: number;
    /** One-shot message shown on the next page render. */
    flash?: { kind: 'success' | 'danger' | 'info'; text: string };
  }
}
