import { BadRequestException, UnauthorizedException } from '@nestjs/common';

const UNITS: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A duration in the config's notation (`30d`, `12h`), for messages. */
export function formatDuration(ms: number): string {
  const [unit, size] = UNITS.find(([, size]) => ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}

/** The longest `expiresIn` accepted even without a configured cap (keeps dates far from overflow). */
export const MAX_TOKEN_LIFETIME_MS = 3650 * 86_400_000;
export const MIN_TOKEN_LIFETIME_MS = 60_000;

/**
 * When a token created now expires: `expiresIn` when given (at most `maxLifetimeMs`), else the cap,
 * else never (null). A longer `expiresIn` than the cap is a 400 naming both.
 */
export function tokenExpiry(
  expiresInMs: number | undefined,
  maxLifetimeMs: number | null,
  now = new Date(),
): Date | null {
  if (expiresInMs !== undefined && maxLifetimeMs !== null && expiresInMs > maxLifetimeMs) {
    throw new BadRequestException(
      `expiresIn ${formatDuration(expiresInMs)} is longer than this server allows (API_TOKEN_MAX_LIFETIME=${formatDuration(maxLifetimeMs)}).`,
    );
  }
  const lifetime = expiresInMs ?? maxLifetimeMs;
  return lifetime === null ? null : new Date(now.getTime() + lifetime);
}

/** A bearer token past its expiry: 401 with a message saying when and what to do. */
export class TokenExpiredException extends UnauthorizedException {
  constructor(expiresAt: Date) {
    super(`This API token expired at ${expiresAt.toISOString()}; create a new one with POST /api/v1/tokens.`);
  }
}
