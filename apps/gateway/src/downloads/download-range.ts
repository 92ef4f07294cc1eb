import type { Request } from 'express';
import type { ByteRange } from '#common';

/** What a request's `Range` header asks of a file of a given size. */
export type RangeRequest =
  | { kind: 'whole' }
  | { kind: 'range'; range: ByteRange }
  | { kind: 'unsatisfiable' };

/**
 * Reads `Range: bytes=a-b | a- | -n`. One satisfiable range is served as such; a malformed header or
 * several ranges are ignored and the whole file is sent (RFC 9110 allows it); a range outside the
 * file (any range of an empty file) is unsatisfiable.
 */
export function rangeRequest(req: Pick<Request, 'headers' | 'range'>, size: number): RangeRequest {
  if (!req.headers.range) return { kind: 'whole' };
  const parsed = req.range(size, { combine: true });
  if (parsed === -1 || (size === 0 && parsed !== -2)) return { kind: 'unsatisfiable' };
  if (Array.isArray(parsed) && parsed.type === 'bytes' && parsed.length === 1) {
    const { start, end } = parsed[0];
    return { kind: 'range', range: { start, end } };
  }
  return { kind: 'whole' };
}
