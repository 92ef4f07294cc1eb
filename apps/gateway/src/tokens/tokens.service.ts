import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  type ApiTokenEntity,
  ApiTokenRepository,
  AuditRepository,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { TokenExpiredException, tokenExpiry } from './token-expiry.js';

export const TOKEN_PREFIX = 'tess_';
/** A token's "last used" time is refreshed at most this often. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** SHA-256 hex of a token. Tokens carry 256 random bits, so a fast hash is enough (no guessing). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** `tess_` + 43 base64url characters = 256 random bits. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

@Injectable()
export class TokensService {
  constructor(
    private readonly tokens: ApiTokenRepository,
    private readonly audit: AuditRepository,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /**
   * Creates a token expiring after `expiresInMs` (or API_TOKEN_MAX_LIFETIME, or never); the plaintext
   * is returned once and only its hash is stored.
   */
  async create(
    userId: string,
    name: string,
    ip?: string,
    expiresInMs?: number,
  ): Promise<{ token: string; entity: ApiTokenEntity }> {
    const expiresAt = tokenExpiry(expiresInMs, this.config.apiTokens.maxLifetimeMs);
    const token = generateToken();
    const entity = await this.tokens.create({ userId, name, tokenHash: hashToken(token), expiresAt });
    await this.audit.record({
      action: 'token.created',
      userId,
      ip,
      details: { tokenId: entity.id, name, expiresAt: expiresAt?.toISOString() ?? null },
    });
    return { token, entity };
  }

  async authenticate(token: string): Promise<Express.User | null> {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return null;
    const found = await this.tokens.findActiveWithOwner(hashToken(token));
    if (!found) return null;
    if (found.expiresAt && found.expiresAt.getTime() <= Date.now())
      throw new TokenExpiredException(found.expiresAt);
    // "Last used" is shown to the owner with minute precision; writing it on every request would make
    // every API call (every small upload) a database write.
    const last = found.lastUsedAt?.getTime() ?? 0;
    if (Date.now() - last >= LAST_USED_RESOLUTION_MS) await this.tokens.touch(found.tokenId);
    return {
      id: found.userId,
      username: found.username,
      role: found.role,
      quota: { quotaBytes: found.quotaBytes, quotaFiles: found.quotaFiles },
    };
  }

  list(userId: string): Promise<ApiTokenEntity[]> {
    return this.tokens.listForUser(userId);
  }

  async revoke(userId: string, id: string, ip?: string): Promise<boolean> {
    const revoked = await this.tokens.revoke(userId, id);
    if (revoked) await this.audit.record({ action: 'token.revoked', userId, ip, details: { tokenId: id } });
    return revoked;
  }
}
