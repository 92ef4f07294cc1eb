import { InitialSchema1764300000000 } from './1764300000000-initial-schema.js';
import { ApiTokenExpiry1764400000000 } from './1764400000000-api-token-expiry.js';
import { ContentChecks1764900000000 } from './1764900000000-content-checks.js';

/** Every migration, oldest first. Applied at gateway start (under an advisory lock) and by `npm run migrate`. */
export const MIGRATIONS = [
  InitialSchema1764300000000,
  ApiTokenExpiry1764400000000,
  ContentChecks1764900000000,
];
