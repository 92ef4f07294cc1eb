import { Inject, Injectable } from '@nestjs/common';
import argon2 from 'argon2';
import { Counter } from 'prom-client';
import { TESS_CONFIG, type TessConfig, TessMetrics } from '#common';
import { COMMON_PASSWORDS } from './common-passwords.js';

export const PASSWORD_MIN_LENGTH = 8;
/** Long passphrases are welcome; the cap only bounds hashing work. Never truncated silently. */
export const PASSWORD_MAX_LENGTH = 256;

/** Returns a readable problem with the password, or null when it is acceptable (docs/security.md item 9). */
export function passwordProblem(password: string, username?: string): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `Password must be at least ${PASSWORD_MIN_LENGTH} characters.`;
  if (length > PASSWORD_MAX_LENGTH) return `Password must be at most ${PASSWORD_MAX_LENGTH} characters.`;
  const lower = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lower)) return 'That password is one of the most common ones; choose another.';
  if (username && lower === username.toLowerCase()) return 'Password must not be your username.';
  return null;
}

/** argon2id hashing with configurable cost (at least OWASP's m=19456 KiB, t=2, p=1). */
@Injectable()
export class PasswordService {
  private readonly options: { type: 2; memoryCost: number; timeCost: number; parallelism: number };
  /** argon2 is the gateway's CPU lever: operators (and the throttling specs) watch how often it runs. */
  readonly operations: Counter<'op'>;

  constructor(@Inject(TESS_CONFIG) config: TessConfig, metrics: TessMetrics) {
    this.options = { type: argon2.argon2id, ...config.argon2 };
    this.operations = new Counter({
      name: 'tess_argon2_operations_total',
      help: 'argon2id hashes and verifications run by the gateway',
      labelNames: ['op'],
      registers: [metrics.registry],
    });
  }

  hash(password: string): Promise<string> {
    this.operations.inc({ op: 'hash' });
    return argon2.hash(password, this.options);
  }

  async verify(hash: string, password: string): Promise<boolean> {
    this.operations.inc({ op: 'verify' });
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false;
    }
  }

  /** True when the stored hash was made with weaker (or different) parameters than configured now. */
  needsRehash(hash: string): boolean {
    return argon2.needsRehash(hash, this.options);
  }
}
