import { describe, expect, it } from 'vitest';
import { normalizeContentType, normalizeFilename } from './filename.js';

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

describe('normalizeContentType', () => {
  it('keeps plain types and replaces anything else', () => {
    expect(normalizeContentType('image/png')).toBe('image/png');
    expect(normalizeContentType('text/plain; charset=utf-8')).toBe('text/plain');
    expect(normalizeContentType('text/html\r\nX-Evil: 1')).toBe('application/octet-stream');
    expect(normalizeContentType(undefined)).toBe('application/octet-stream');
  });
});
