/**
 * Pure arithmetic over the v1 layout: `header | segment 0 | ... | segment n-1`, where every
 * segment but the last holds exactly `segmentSize` ciphertext bytes (`segmentSize - 16` plaintext
 * bytes plus a 16-byte tag) and the last holds 16..segmentSize bytes. There is always at least one
 * segment, and the last segment is never empty unless it is the only one.
 */
import { IntegrityError } from './integrity.error.js';
import { TAG_LENGTH } from './object-header.js';

/** Segment indexes are u32 in the nonce. */
export const MAX_SEGMENTS = 2 ** 32;

/** What the arithmetic needs from a header. */
export interface ObjectLayout {
  headerLength: number;
  segmentSize: number;
}

/** Sizes of a whole object, derived from its ciphertext length. */
export interface ObjectGeometry {
  plaintextLength: number;
  ciphertextLength: number;
  segmentCount: number;
  /** Index of the last segment (`segmentCount - 1`), decrypted with the last-segment flag. */
  lastSegment: number;
  /** Ciphertext bytes of the last segment (16..segmentSize). */
  lastSegmentLength: number;
}

/** The plan for serving plaintext bytes `start..end` (inclusive) of an object. */
export interface SegmentRange {
  firstSegment: number;
  lastSegment: number;
  /** First ciphertext byte to fetch (absolute offset in the object). */
  ciphertextStart: number;
  /** Last ciphertext byte to fetch, inclusive (absolute offset in the object). */
  ciphertextEnd: number;
  /** Plaintext bytes to drop from the start of `firstSegment` after decrypting. */
  skip: number;
  /** Plaintext bytes to emit after skipping (`end - start + 1`). */
  take: number;
}

/** A byte range that lies outside the plaintext (HTTP 416). */
export class RangeNotSatisfiableError extends RangeError {
  constructor(
    readonly start: number,
    readonly end: number,
    readonly plaintextLength: number,
  ) {
    super(`Range ${start}-${end} is not satisfiable for ${plaintextLength} plaintext bytes`);
    this.name = 'RangeNotSatisfiableError';
  }
}

function assertLength(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
}

/** Plaintext bytes in every segment but the last: `segmentSize - 16`. */
export function plaintextSegmentSize(segmentSize: number): number {
  return segmentSize - TAG_LENGTH;
}

/** Number of segments for `plaintextLength` bytes: `max(1, ceil(L / P))`. */
export function segmentCount(plaintextLength: number, segmentSize: number): number {
  assertLength('plaintextLength', plaintextLength);
  return plaintextLength === 0 ? 1 : Math.ceil(plaintextLength / plaintextSegmentSize(segmentSize));
}

/** Absolute offset of segment `index` in the object: `H + index * S`. */
export function segmentOffset(index: number, layout: ObjectLayout): number {
  return layout.headerLength + index * layout.segmentSize;
}

/** Object length for `plaintextLength` bytes: `H + L + 16 * max(1, ceil(L / P))`. */
export function ciphertextLength(plaintextLength: number, layout: ObjectLayout): number {
  const count = segmentCount(plaintextLength, layout.segmentSize);
  if (count > MAX_SEGMENTS) {
    throw new RangeError(
      `${plaintextLength} bytes need ${count} segments; the format allows ${MAX_SEGMENTS}`,
    );
  }
  const length = layout.headerLength + plaintextLength + count * TAG_LENGTH;
  if (!Number.isSafeInteger(length)) {
    throw new RangeError(`Object length for ${plaintextLength} plaintext bytes exceeds 2^53 - 1`);
  }
  return length;
}

/**
 * Geometry of an object of `ciphertextLength` bytes (header included). Throws IntegrityError('length')
 * when no plaintext length produces that many bytes (a partial tag, an empty trailing segment,
 * shorter than header + one tag, or more than 2^32 segments).
 */
export function describeObject(ciphertextLength: number, layout: ObjectLayout): ObjectGeometry {
  assertLength('ciphertextLength', ciphertextLength);
  const { headerLength, segmentSize } = layout;
  const body = ciphertextLength - headerLength;
  if (body < TAG_LENGTH) {
    throw new IntegrityError(
      'length',
      `Object of ${ciphertextLength} bytes is shorter than its ${headerLength}-byte header plus one tag`,
    );
  }
  const count = Math.ceil(body / segmentSize);
  const lastSegmentLength = body - (count - 1) * segmentSize;
  if (count > 1 && lastSegmentLength === TAG_LENGTH) {
    throw new IntegrityError('length', 'Object ends with an empty segment after full segments');
  }
  if (lastSegmentLength < TAG_LENGTH) {
    throw new IntegrityError(
      'length',
      `Object length ${ciphertextLength} leaves a ${lastSegmentLength}-byte final segment, shorter than a tag`,
    );
  }
  if (count > MAX_SEGMENTS) {
    throw new IntegrityError('length', `Object has ${count} segments; the format allows ${MAX_SEGMENTS}`);
  }
  return {
    plaintextLength: body - count * TAG_LENGTH,
    ciphertextLength,
    segmentCount: count,
    lastSegment: count - 1,
    lastSegmentLength,
  };
}

/** Plaintext length of an object of `ciphertextLength` bytes; throws IntegrityError('length') if impossible. */
export function plaintextLength(ciphertextLength: number, layout: ObjectLayout): number {
  return describeObject(ciphertextLength, layout).plaintextLength;
}

/**
 * Plans a ranged read of plaintext bytes `start..end` (inclusive, 0 <= start <= end < L):
 * `firstSegment = floor(start / P)`, `lastSegment = floor(end / P)`,
 * ciphertext `H + firstSegment * S .. min(H + (lastSegment + 1) * S, C) - 1`,
 * then skip `start - firstSegment * P` and take `end - start + 1` plaintext bytes.
 * Throws RangeNotSatisfiableError when the range is empty or outside the plaintext.
 */
export function planRange(
  layout: ObjectLayout,
  ciphertextLength: number,
  start: number,
  end: number,
): SegmentRange {
  const geometry = describeObject(ciphertextLength, layout);
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    start > end ||
    end >= geometry.plaintextLength
  ) {
    throw new RangeNotSatisfiableError(start, end, geometry.plaintextLength);
  }
  const p = plaintextSegmentSize(layout.segmentSize);
  const firstSegment = Math.floor(start / p);
  const lastSegment = Math.floor(end / p);
  return {
    firstSegment,
    lastSegment,
    ciphertextStart: segmentOffset(firstSegment, layout),
    ciphertextEnd: Math.min(segmentOffset(lastSegment + 1, layout), ciphertextLength) - 1,
    skip: start - firstSegment * p,
    take: end - start + 1,
  };
}
