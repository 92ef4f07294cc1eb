import type { Request, Response } from 'express';
import type { DownloadOutcome } from './download.responder.js';

/**
 * Conditional downloads (RFC 9110 §13). The validator is the plaintext's SHA-256, a strong entity tag.
 * Hand-written rather than `fresh` (Express's helper): that one gives up on a request's
 * `Cache-Control: no-cache`, which an origin server must not do, and knows nothing of If-Range; what
 * is left is finding the entity tags in one header.
 */

/** The ETag of a stored file: `"sha256-<hex>"`. */
export function entityTag(sha256: string | null): string | undefined {
  return sha256 ? `"sha256-${sha256}"` : undefined;
}

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, where etagc excludes only DQUOTE (commas included).
const ENTITY_TAG = /(?:W\/)?"[^"]*"/g;

/** If-None-Match (weak comparison, `*` matches any stored file): true when a GET/HEAD gets a 304. */
export function notModified(req: Pick<Request, 'method' | 'headers'>, etag: string | undefined): boolean {
  const header = req.headers['if-none-match'];
  if (!etag || !header || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  if (header.trim() === '*') return true;
  return [...header.matchAll(ENTITY_TAG)].some(([tag]) => tag.replace(/^W\//, '') === etag);
}

/**
 * If-Range: true when the Range may be served. A weak tag never matches (strong comparison), and a
 * date never does either since no Last-Modified is sent; the whole file then goes out with 200.
 */
export function rangeStillValid(req: Pick<Request, 'headers'>, etag: string | undefined): boolean {
  const header = req.headers['if-range'];
  return header === undefined || (etag !== undefined && String(header).trim() === etag);
}

/** The 304: no body, the validator and the same caching rule as the 200 it stands for. */
export function answerNotModified(res: Response, etag: string): DownloadOutcome {
  res.status(304).setHeader('ETag', etag);
  res.setHeader('Cache-Control', 'private, no-store');
  res.end();
  return { status: 304, body: 'none' };
}
