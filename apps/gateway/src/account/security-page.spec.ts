import { describe, expect, it } from 'vitest';
import { tokenLifetimes } from './security-page.js';

describe('tokenLifetimes', () => {
  it('offers 7, 30, 90 and 365 days and "never" when API_TOKEN_MAX_LIFETIME is unset', () => {
    expect(tokenLifetimes(null)).toEqual([
      { value: '7d', label: '7 days' },
      { value: '30d', label: '30 days' },
      { value: '90d', label: '90 days' },
      { value: '365d', label: '365 days' },
      { value: 'never', label: 'Never expires' },
    ]);
  });

  it('offers only what the cap allows, and the cap itself instead of "never"', () => {
    expect(tokenLifetimes(45 * 86_400_000)).toEqual([
      { value: '7d', label: '7 days' },
      { value: '30d', label: '30 days' },
      { value: 'never', label: 'The longest allowed (45d)' },
    ]);
    expect(tokenLifetimes(3_600_000)).toEqual([{ value: 'never', label: 'The longest allowed (1h)' }]);
  });
});
