import { TRANSIENT_NETWORK_ERROR_CODES } from '../util/network-errors.js';

/**
 * SQLSTATEs that mean "the server is not there (or not taking work) right now", not "this statement is
 * wrong": class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now), 53300
 * (too many connections).
 */
const UNAVAILABLE_SQLSTATES = /^(08\w{3}|57P0[123]|53300)$/;

/** node-postgres and its pool say so in words, without a code. */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|Connection ended unexpectedly|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * True when `error` (a TypeORM QueryFailedError, a pg error, a socket error) means PostgreSQL is
 * unreachable or restarting: the request should answer 503 and a worker should pause, rather than treat
 * it as a bug (500) or a permanent failure. docs/security.md item 34.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  // The AWS SDK marks its errors ($metadata): an object store or Secrets Manager socket error is not one.
  if ((error as { $metadata?: unknown } | null)?.$metadata !== undefined) return false;
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const { code, message, driverError, cause } = e as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
    };
    if (
      typeof code === 'string' &&
      (UNAVAILABLE_SQLSTATES.test(code) || TRANSIENT_NETWORK_ERROR_CODES.has(code))
    )
      return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
    e = driverError ?? cause;
  }
  return false;
}

/** The message a client sees while the database is unavailable. */
export const DATABASE_UNAVAILABLE_MESSAGE =
  'The database is unavailable right now; nothing was changed or stored. Try again in a moment.';
