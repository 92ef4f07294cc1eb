import type { Request } from 'express';
import type { ByteRange } from '#common';

/** What a request's `Range` header asks of a file of a given size. */
export type RangeRequest =
  | { kind: 'whole' }
  | { kind: 'range'; range: ByteRange }
  | { kind: 'unsatisfiable' };

/** `bytes=-n`, the one suffix range, with optional whitespace (RFC 9110 14.1.1). */
const SUFFIX = /^bytes=[ \t]*-(\d+)[ \t]*$/i;

/**
 * Reads `Range: bytes=a-b | a- | -n`. One satisfiable range is served as such; a malformed header or
 * several ranges are ignored and the whole file is sent (RFC 9110 allows it); a range outside the
 * file (any range of an empty file) is unsatisfiable. A suffix longer than the file selects all of it
 * (RFC 9110 14.1.2), which range-parser instead drops as invalid (and so answers 416).
 */
export function rangeRequest(req: Pick<Request, 'headers' | 'range'>, size: number): RangeRequest {
  if (!req.headers.range) return { kind: 'whole' };
  const suffix = SUFFIX.exec(req.headers.range);
  if (suffix && size > 0 && Number(suffix[1]) >= size)
    return { kind: 'range', range: { start: 0, end: size - 1 } };
  const parsed = req.range(size, { combine: true });
  if (parsed === -1 || (size === 0 && parsed !== -2)) return { kind: 'unsatisfiable' };
  if (Array.isArray(parsed) && parsed.type === 'bytes' && parsed.length === 1) {
    const { start, end } = parsed[0];
    return { kind: 'range', range: { start, end } };
  }
  return { kind: 'whole' };
}
