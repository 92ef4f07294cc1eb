import express, { type Request } from 'express';
import { describe, expect, it } from 'vitest';
import { rangeRequest } from './download-range.js';

/** A request with Express's own `req.range` (range-parser) and the given Range header. */
function withRange(range?: string): Request {
  const req = Object.create(express.request) as Request;
  req.headers = range === undefined ? {} : { range };
  return req;
}

describe('rangeRequest', () => {
  it('no header: the whole file', () => {
    expect(rangeRequest(withRange(), 100)).toEqual({ kind: 'whole' });
  });

  it('a-b, a- and -n: one inclusive range inside the file', () => {
    expect(rangeRequest(withRange('bytes=0-0'), 100)).toEqual({ kind: 'range', range: { start: 0, end: 0 } });
    expect(rangeRequest(withRange('bytes=10-'), 100)).toEqual({
      kind: 'range',
      range: { start: 10, end: 99 },
    });
    expect(rangeRequest(withRange('bytes=-1'), 100)).toEqual({
      kind: 'range',
      range: { start: 99, end: 99 },
    });
    expect(rangeRequest(withRange('bytes=90-1000'), 100)).toEqual({
      kind: 'range',
      range: { start: 90, end: 99 },
    });
  });

  it('overlapping ranges are combined into one', () => {
    expect(rangeRequest(withRange('bytes=0-10,5-20'), 100)).toEqual({
      kind: 'range',
      range: { start: 0, end: 20 },
    });
  });

  it('several disjoint ranges, malformed headers and other units: the whole file', () => {
    expect(rangeRequest(withRange('bytes=0-1,50-60'), 100)).toEqual({ kind: 'whole' });
    expect(rangeRequest(withRange('bytes=abc'), 100)).toEqual({ kind: 'whole' });
    expect(rangeRequest(withRange('items=0-1'), 100)).toEqual({ kind: 'whole' });
  });

  it('a suffix longer than the file selects the whole file as a range (RFC 9110 14.1.2)', () => {
    const all = { kind: 'range', range: { start: 0, end: 99 } };
    expect(rangeRequest(withRange('bytes=-99999'), 100)).toEqual(all);
    expect(rangeRequest(withRange('bytes=-100'), 100)).toEqual(all);
    expect(rangeRequest(withRange('bytes= -101 '), 100)).toEqual(all);
    expect(rangeRequest(withRange(`bytes=-${'9'.repeat(40)}`), 100)).toEqual(all);
    expect(rangeRequest(withRange('bytes=-0'), 100)).toEqual({ kind: 'unsatisfiable' });
  });

  it('a range starting past the end is unsatisfiable', () => {
    expect(rangeRequest(withRange('bytes=100-'), 100)).toEqual({ kind: 'unsatisfiable' });
    expect(rangeRequest(withRange('bytes=200-300'), 100)).toEqual({ kind: 'unsatisfiable' });
  });

  it('an empty file: any well-formed range is unsatisfiable, a malformed one is ignored', () => {
    expect(rangeRequest(withRange('bytes=0-0'), 0)).toEqual({ kind: 'unsatisfiable' });
    expect(rangeRequest(withRange('bytes=-1'), 0)).toEqual({ kind: 'unsatisfiable' });
    expect(rangeRequest(withRange('bytes=abc'), 0)).toEqual({ kind: 'whole' });
  });
});
