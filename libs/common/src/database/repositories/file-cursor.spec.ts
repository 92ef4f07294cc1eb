import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, InvalidCursorError } from './file-cursor.js';

const ID = '7d3f1c2a-9b4e-4c6d-8e2f-1a2b3c4d5e6f';
const raw = (text: string) => Buffer.from(text).toString('base64url');

describe('file cursors', () => {
  it('round-trips a cursor this server issued, with microseconds', () => {
    const cursor = encodeCursor('2024-02-29T23:59:59.123456Z', ID);
    expect(decodeCursor(cursor)).toEqual({ createdAt: '2024-02-29T23:59:59.123456Z', id: ID });
    expect(decodeCursor(`${cursor}==`)).toEqual({ createdAt: '2024-02-29T23:59:59.123456Z', id: ID });
  });

  it.each([
    '2024-02-30T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2024-04-31T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-00-10T00:00:00Z',
    '2024-01-00T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '2024-01-01T24:00:00Z',
    '2024-01-01T23:60:00Z',
    '2024-01-01T23:59:60Z',
    '2024-01-01T00:00:00.1234567Z',
    '2024-01-01T00:00:00+01:00',
  ])('rejects the out-of-range or non-UTC time %s', (time) => {
    expect(() => decodeCursor(raw(`${time}|${ID}`))).toThrow(InvalidCursorError);
  });

  it.each([
    ['not base64url', `${encodeCursor('2024-01-01T00:00:00Z', ID)}!*`],
    ['no id', raw('2024-01-01T00:00:00Z')],
    ['a non-UUID id', raw('2024-01-01T00:00:00Z|1')],
    ['a third field', raw(`2024-01-01T00:00:00Z|${ID}|x`)],
    ['a NUL byte', raw(`2024-01-01T00:00:00Z\0|${ID}`)],
    ['empty', ''],
  ])('rejects %s', (_what, cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(InvalidCursorError);
  });

  it('accepts February 29th in leap years only', () => {
    expect(() => decodeCursor(raw(`2000-02-29T00:00:00Z|${ID}`))).not.toThrow();
    expect(() => decodeCursor(raw(`1900-02-29T00:00:00Z|${ID}`))).toThrow(InvalidCursorError);
  });
});
