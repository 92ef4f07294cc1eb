import { describe, expect, it } from 'vitest';
import { redactRequestUrl } from './redact-url.js';

describe('redactRequestUrl', () => {
  it('replaces the values of credential-like query parameters and keeps the rest as sent', () => {
    expect(redactRequestUrl('/api/v1/files?limit=1&access_token=tess_SECRET&q=a%20b+c')).toBe(
      '/api/v1/files?limit=1&access_token=[redacted]&q=a%20b+c',
    );
    const names = [
      'token',
      'id_token',
      'password',
      'secret',
      'client_secret',
      'key',
      'api_key',
      'apiKey',
      'signature',
      'X-Amz-Signature',
      'X-Amz-Credential',
      'X-Amz-Security-Token',
      'access%5Ftoken',
    ];
    for (const name of names)
      expect(redactRequestUrl(`/x?${name}=SECRET&ok=1`), name).toBe(`/x?${name}=[redacted]&ok=1`);
  });

  it('leaves URLs without credentials untouched, fragments and malformed escapes included', () => {
    for (const url of [
      '/',
      '/api/v1/files',
      '/api/v1/files?limit=25&cursor=abc',
      '/x?%E0%A4%A=1#top',
      '/x?flag',
    ])
      expect(redactRequestUrl(url)).toBe(url);
    expect(redactRequestUrl('/x?token=SECRET#frag')).toBe('/x?token=[redacted]#frag');
  });

  it('replaces the token of a share-link path, keeping the route and the query', () => {
    const token = 'IFGfrbsanImvgMBMbqRtnznEcbaydCHJQwW_vViIBJ4';
    expect(redactRequestUrl(`/s/${token}`)).toBe('/s/[redacted]');
    expect(redactRequestUrl(`/s/${token}/content`)).toBe('/s/[redacted]/content');
    expect(redactRequestUrl(`/s/${token}/content?token=x&a=1`)).toBe(
      '/s/[redacted]/content?token=[redacted]&a=1',
    );
    for (const url of ['/static/s/x', '/api/v1/shares', '/s', '/sx/abc'])
      expect(redactRequestUrl(url)).toBe(url);
  });
});
