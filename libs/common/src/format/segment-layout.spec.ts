import { describe, expect, it } from 'vitest';
import { IntegrityError } from './integrity.error.js';
import { DEFAULT_SEGMENT_SIZE, TAG_LENGTH } from './object-header.js';
import {
  ciphertextLength,
  describeObject,
  MAX_SEGMENTS,
  type ObjectLayout,
  plaintextLength,
  plaintextSegmentSize,
  planRange,
  RangeNotSatisfiableError,
  segmentCount,
} from './segment-layout.js';

const H = 100;
const S = 64;
const P = S - TAG_LENGTH;
const layout: ObjectLayout = { headerLength: H, segmentSize: S };

function lengthError(fn: () => unknown): IntegrityError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).reason).toBe('length');
    return error as IntegrityError;
  }
  throw new Error('expected an IntegrityError');
}

describe('segment layout arithmetic', () => {
  it('gives production segments of 1 MiB holding 1 MiB - 16 plaintext bytes, five per 5 MiB part', () => {
    expect(DEFAULT_SEGMENT_SIZE).toBe(1048576);
    expect(plaintextSegmentSize(DEFAULT_SEGMENT_SIZE)).toBe(1048560);
    expect((5 * 1024 * 1024) % DEFAULT_SEGMENT_SIZE).toBe(0);
  });

  it('always has at least one segment and never an empty trailing one', () => {
    expect(segmentCount(0, S)).toBe(1);
    expect(segmentCount(1, S)).toBe(1);
    expect(segmentCount(P, S)).toBe(1);
    expect(segmentCount(P + 1, S)).toBe(2);
    expect(segmentCount(3 * P, S)).toBe(3);
  });

  it('computes the object length as H + L + 16 * max(1, ceil(L / P))', () => {
    expect(ciphertextLength(0, layout)).toBe(H + 16);
    expect(ciphertextLength(1, layout)).toBe(H + 17);
    expect(ciphertextLength(P - 1, layout)).toBe(H + S - 1);
    expect(ciphertextLength(P, layout)).toBe(H + S);
    expect(ciphertextLength(P + 1, layout)).toBe(H + S + 17);
    expect(ciphertextLength(3 * P + 3, layout)).toBe(H + 3 * S + 19);
  });

  it('inverts the object length for every plaintext length', () => {
    for (let length = 0; length <= 10 * P; length++) {
      const c = ciphertextLength(length, layout);
      const geometry = describeObject(c, layout);
      expect(geometry.plaintextLength).toBe(length);
      expect(geometry.segmentCount).toBe(segmentCount(length, S));
      expect(geometry.lastSegment).toBe(geometry.segmentCount - 1);
      expect(geometry.lastSegmentLength).toBe(c - H - geometry.lastSegment * S);
      expect(plaintextLength(c, layout)).toBe(length);
    }
  });

  it('rejects object lengths no plaintext can produce', () => {
    lengthError(() => plaintextLength(0, layout));
    lengthError(() => plaintextLength(H, layout));
    lengthError(() => plaintextLength(H + 15, layout));
    for (let partial = 1; partial < TAG_LENGTH; partial++) {
      lengthError(() => plaintextLength(H + 2 * S + partial, layout));
    }
    // A full segment followed by a bare tag would be an empty trailing segment, which is never written.
    lengthError(() => plaintextLength(H + S + TAG_LENGTH, layout));
    expect(() => plaintextLength(-1, layout)).toThrow(RangeError);
    expect(() => plaintextLength(1.5, layout)).toThrow(RangeError);
  });

  it('caps objects at 2^32 segments', () => {
    const big: ObjectLayout = { headerLength: H, segmentSize: DEFAULT_SEGMENT_SIZE };
    const maxPlaintext = MAX_SEGMENTS * plaintextSegmentSize(DEFAULT_SEGMENT_SIZE);
    expect(ciphertextLength(maxPlaintext, big)).toBe(H + MAX_SEGMENTS * DEFAULT_SEGMENT_SIZE);
    expect(() => ciphertextLength(maxPlaintext + 1, big)).toThrow(RangeError);
    lengthError(() => plaintextLength(H + MAX_SEGMENTS * DEFAULT_SEGMENT_SIZE + 17, big));
  });
});

describe('planRange', () => {
  const L = 5 * P + 7;
  const C = ciphertextLength(L, layout);

  it('serves the first byte from the start of segment 0', () => {
    expect(planRange(layout, C, 0, 0)).toEqual({
      firstSegment: 0,
      lastSegment: 0,
      ciphertextStart: H,
      ciphertextEnd: H + S - 1,
      skip: 0,
      take: 1,
    });
  });

  it('serves the last byte from the short last segment, ending at the last object byte', () => {
    expect(planRange(layout, C, L - 1, L - 1)).toEqual({
      firstSegment: 5,
      lastSegment: 5,
      ciphertextStart: H + 5 * S,
      ciphertextEnd: C - 1,
      skip: 6,
      take: 1,
    });
  });

  it('spans two segments across a boundary', () => {
    expect(planRange(layout, C, P - 2, P + 1)).toEqual({
      firstSegment: 0,
      lastSegment: 1,
      ciphertextStart: H,
      ciphertextEnd: H + 2 * S - 1,
      skip: P - 2,
      take: 4,
    });
  });

  it('serves a suffix and the whole plaintext', () => {
    expect(planRange(layout, C, L - 20, L - 1)).toEqual({
      firstSegment: 4,
      lastSegment: 5,
      ciphertextStart: H + 4 * S,
      ciphertextEnd: C - 1,
      skip: P - 13,
      take: 20,
    });
    expect(planRange(layout, C, 0, L - 1)).toEqual({
      firstSegment: 0,
      lastSegment: 5,
      ciphertextStart: H,
      ciphertextEnd: C - 1,
      skip: 0,
      take: L,
    });
  });

  it('rejects ranges outside the plaintext', () => {
    expect(() => planRange(layout, C, 5, 4)).toThrow(RangeNotSatisfiableError);
    expect(() => planRange(layout, C, 0, L)).toThrow(RangeNotSatisfiableError);
    expect(() => planRange(layout, C, -1, 3)).toThrow(RangeNotSatisfiableError);
    expect(() => planRange(layout, ciphertextLength(0, layout), 0, 0)).toThrow(RangeNotSatisfiableError);
  });
});
