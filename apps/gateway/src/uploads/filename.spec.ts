import { describe, expect, it } from 'vitest';
import {
  decodeFormDataFilename,
  normalizeContentType,
  normalizeFilename,
  storedFilename,
} from './filename.js';

describe('normalizeFilename', () => {
  it.each([
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\windows\\system32\\x.dll', 'x.dll'],
    ['/absolute/path/report.pdf', 'report.pdf'],
    ['C:\\Users\\me\\notes.txt', 'notes.txt'],
    ['evil\u0000name.txt', 'evilname.txt'],
    ['header\r\nInjection: yes.txt', 'headerInjection: yes.txt'],
    ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ['  spaced   out  .txt ', 'spaced out .txt'],
    ['...hidden', 'hidden'],
    ['', 'unnamed'],
    ['../', 'unnamed'],
    ['Cafe\u0301.txt', 'Café.txt'],
  ])('%j -> %j', (raw, expected) => {
    expect(normalizeFilename(raw)).toBe(expected);
  });

  it('limits the length to 255 characters and keeps the extension', () => {
    const name = normalizeFilename(`${'a'.repeat(10_000)}.tar.gz`);
    expect(name).toHaveLength(255);
    expect(name.endsWith('.gz')).toBe(true);
    const emoji = normalizeFilename('😀'.repeat(300));
    expect(emoji.length).toBeLessThanOrEqual(255);
  });
});

describe('storedFilename (the multipart filename parameter)', () => {
  it.each([
    ['Quarterly %22final%22 report.txt', 'Quarterly "final" report.txt'],
    ['a%0D%0AInjection: yes.txt', 'aInjection: yes.txt'],
    ['%22%22.txt', '"".txt'],
    ['100%25 sure %20 %2F.txt', '100%25 sure %20 %2F.txt'],
    ['lower %22 only upper %0d %0a.txt', 'lower " only upper %0d %0a.txt'],
    ['résumé (final) <b>x</b>.pdf', 'b>.pdf'],
    ['dir%22/x%22.txt', 'x".txt'],
  ])('%j -> %j', (raw, expected) => {
    expect(storedFilename(raw)).toBe(expected);
  });

  it('undoes exactly the WHATWG form-data escapes', () => {
    expect(decodeFormDataFilename('a%22b%0Dc%0Ad')).toBe('a"b\rc\nd');
    expect(decodeFormDataFilename(undefined)).toBe('');
  });
});

describe('normalizeContentType', () => {
  it('keeps plain types and replaces anything else', () => {
    expect(normalizeContentType('image/png')).toBe('image/png');
    expect(normalizeContentType('text/plain; charset=utf-8')).toBe('text/plain');
    expect(normalizeContentType('text/html\r\nX-Evil: 1')).toBe('application/octet-stream');
    expect(normalizeContentType(undefined)).toBe('application/octet-stream');
  });
});
