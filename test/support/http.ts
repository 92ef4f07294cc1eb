import type { Response } from 'supertest';

/** Reads the CSRF token a page embedded in its `_csrf` field (or the meta tag). */
export function csrfFrom(res: Response): string {
  const match =
    /name="_csrf" value="([^"]+)"/.exec(res.text) ?? /name="csrf-token" content="([^"]+)"/.exec(res.text);
  if (!match?.[1]) throw new Error(`No CSRF token in the page (status ${res.status})`);
  return match[1];
}

/** The session cookie `name=value` pair from a response, if it set one. */
export function sessionCookie(res: Response): string | undefined {
  const cookies = res.headers['set-cookie'] as unknown as string[] | undefined;
  return cookies?.find((c) => c.startsWith('tess.sid='))?.split(';')[0];
}

/** The anonymous forms' CSRF cookie `name=value` pair from a response (GET /login, /register). */
export function formCookie(res: Response): string | undefined {
  const cookies = res.headers['set-cookie'] as unknown as string[] | undefined;
  return cookies?.find((c) => c.startsWith('tess.csrf='))?.split(';')[0];
}
