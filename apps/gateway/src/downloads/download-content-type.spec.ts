import { describe, expect, it } from 'vitest';
import { OPAQUE, servedContentType } from './download-content-type.js';

describe('servedContentType', () => {
  it.each([
    ['text/plain', 'text/plain'],
    ['image/png', 'image/png'],
    ['Application/PDF', 'application/pdf'],
    ['text/plain; charset=utf-8', 'text/plain'],
    ['application/json', 'application/json'],
  ])('echoes the essence of a passive type: %s -> %s', (declared, served) => {
    expect(servedContentType(declared)).toBe(served);
  });

  it.each([
    'text/html',
    'TEXT/HTML; charset=utf-8',
    'application/xhtml+xml',
    'image/svg+xml',
    'text/javascript',
    'application/javascript',
    'application/x-javascript',
    'text/xml',
    'application/xml',
    'application/rss+xml',
    'application/vnd.foo+xml; x=1',
    'multipart/x-mixed-replace; boundary=x',
  ])('serves the executable type %s as application/octet-stream', (declared) => {
    expect(servedContentType(declared)).toBe(OPAQUE);
  });

  it.each(['', 'html', 'text/', '/html', 'text/plain\r\nSet-Cookie: a=b', 'text/pl ain', 'ü/x'])(
    'serves the malformed %j as application/octet-stream',
    (declared) => {
      expect(servedContentType(declared)).toBe(OPAQUE);
    },
  );

  it('a detected type wins over the declared one, under the same policy', () => {
    expect(servedContentType('image/png', 'text/html')).toBe(OPAQUE);
    expect(servedContentType('text/html', 'image/png')).toBe('image/png');
    expect(servedContentType('image/png', null)).toBe('image/png');
  });
});
