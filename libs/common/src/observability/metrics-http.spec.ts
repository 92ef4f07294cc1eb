import { describe, expect, it } from 'vitest';
import { metricsAuthorized } from './metrics-http.js';

describe('metricsAuthorized', () => {
  const token = 'm3tr1cs-t0ken-0123456789abcdef';

  it('admits every scrape when no token is configured', () => {
    expect(metricsAuthorized(undefined, null)).toBe(true);
    expect(metricsAuthorized('Bearer anything', null)).toBe(true);
  });

  it('admits exactly Bearer <token>', () => {
    expect(metricsAuthorized(`Bearer ${token}`, token)).toBe(true);
    expect(metricsAuthorized(`bearer  ${token} `, token)).toBe(true);
  });

  it.each([
    undefined,
    '',
    token,
    `Basic ${token}`,
    `Bearer ${token}x`,
    `Bearer ${token.slice(0, -1)}`,
    `Bearer ${token} extra`,
    'Bearer ',
  ])('refuses %j', (header) => {
    expect(metricsAuthorized(header, token)).toBe(false);
  });
});
