import { describe, expect, it } from 'vitest';
import { growingDelays } from './login-protection.service.js';

describe('growingDelays', () => {
  it('grows from 1 s like Fibonacci and stops at the cap', () => {
    expect(growingDelays(60_000)).toEqual([1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 60]);
    expect(growingDelays(3_000)).toEqual([1, 1, 2, 3]);
  });

  it('never waits less than a second', () => {
    expect(growingDelays(1)).toEqual([1, 1]);
  });
});
