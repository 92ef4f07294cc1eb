import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copyBytes } from './copy-bytes.js';

describe('copyBytes', () => {
  it('copies like Buffer#copy, into shared and ordinary memory', () => {
    for (const target of [Buffer.alloc(100), Buffer.from(new SharedArrayBuffer(100))]) {
      const a = randomBytes(40);
      expect(copyBytes(a, target, 10)).toBe(40);
      expect(target.subarray(10, 50)).toEqual(a);
      expect(target.subarray(0, 10)).toEqual(Buffer.alloc(10));
      expect(target.subarray(50)).toEqual(Buffer.alloc(50));
      // Only what fits, as Buffer#copy: the rest is the caller's.
      const b = randomBytes(30);
      expect(copyBytes(b, target, 80)).toBe(20);
      expect(target.subarray(80)).toEqual(b.subarray(0, 20));
      expect(target.subarray(50, 80)).toEqual(Buffer.alloc(30));
      // Nothing to copy is no error (Buffer#fill refuses an empty value).
      expect(copyBytes(Buffer.alloc(0), target, 5)).toBe(0);
      expect(copyBytes(b, target, 100)).toBe(0);
      expect(copyBytes(b, target, 120)).toBe(0);
    }
  });

  it('copies a view at its own offset', () => {
    const whole = randomBytes(64);
    const view = whole.subarray(16, 48);
    const target = Buffer.from(new SharedArrayBuffer(32));
    expect(copyBytes(view, target)).toBe(32);
    expect(target).toEqual(whole.subarray(16, 48));
  });
});
