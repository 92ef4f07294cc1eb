import { InitialSchema1764300000000 } from './1764300000000-initial-schema.js';
import { ApiTokenExpiry1764400000000 } from './1764400000000-api-token-expiry.js';
import { Reliability1764500000000 } from './1764500000000-reliability.js';
import { Shares1764600000000 } from './1764600000000-shares.js';
import { PasswordResetTokens1764800000000 } from './1764800000000-password-reset-tokens.js';
import { ContentChecks1764900000000 } from './1764900000000-content-checks.js';
import { ResumableUploads1765000000000 } from './1765000000000-resumable-uploads.js';
import { Mfa1765100000000 } from './1765100000000-mfa.js';
import { Passkeys1765300000000 } from './1765300000000-passkeys.js';
import { FileVersions1765400000000 } from './1765400000000-file-versions.js';
import { Folders1765450000000 } from './1765450000000-folders.js';
import { Admin1765500000000 } from './1765500000000-admin.js';

/** Every migration, oldest first. Applied at gateway start (under an advisory lock) and by `npm run migrate`. */
export const MIGRATIONS = [
  InitialSchema1764300000000,
  ApiTokenExpiry1764400000000,
  Reliability1764500000000,
  Shares1764600000000,
  PasswordResetTokens1764800000000,
  ContentChecks1764900000000,
  ResumableUploads1765000000000,
  Mfa1765100000000,
  Passkeys1765300000000,
  FileVersions1765400000000,
  Folders1765450000000,
  Admin1765500000000,
];
