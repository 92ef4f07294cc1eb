/**
 * Query parameter names whose values are credentials: bearer tokens (`access_token`, `token`,
 * `id_token`), passwords, secrets, keys (`key`, `api_key`, `apiKey`), signatures of presigned URLs
 * (`signature`, `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`) and the like.
 */
const SENSITIVE_NAME = /token|passw|pwd|secret|key|signature|sig$|credential|auth|session|code$/i;

export const REDACTED = '[redacted]';

/**
 * Paths that carry a credential themselves: a share link's token (`/s/<token>`, `/s/<token>/content`).
 * The segment is replaced, so the log still shows which route was asked for.
 */
const SECRET_PATH = /^(\/s\/)[^/?#]+/;

/**
 * The URL (path + query, as in a request line) with the values of credential-like query parameters
 * and the token of a share-link path replaced by `[redacted]`; everything else is kept byte for byte
 * so the log still shows what was asked. Hand-written rather than URLSearchParams, which would
 * re-encode the parameters it does not touch.
 */
export function redactRequestUrl(raw: string): string {
  const url = raw.replace(SECRET_PATH, `$1${REDACTED}`);
  const start = url.indexOf('?');
  if (start < 0) return url;
  const hash = url.indexOf('#', start);
  const end = hash < 0 ? url.length : hash;
  const query = url
    .slice(start + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      return eq >= 0 && SENSITIVE_NAME.test(decodeName(rawName)) ? `${rawName}=${REDACTED}` : pair;
    })
    .join('&');
  return `${url.slice(0, start)}?${query}${url.slice(end)}`;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}
