import { Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { PasswordResetTokenEntity } from '../entities/password-reset-token.entity.js';
import { storeNewPassword } from './user.repository.js';

/** Why a reset token cannot be used (none: it can). */
export type ResetTokenState = 'valid' | 'unknown' | 'used' | 'expired';

/** Password reset links (docs/security.md item 11b): only token hashes are ever stored or looked up. */
@Injectable()
export class PasswordResetTokenRepository {
  private readonly repo: Repository<PasswordResetTokenEntity>;

  constructor(private readonly dataSource: DataSource) {
    this.repo = dataSource.getRepository(PasswordResetTokenEntity);
  }

  create(
    data: Pick<PasswordResetTokenEntity, 'userId' | 'tokenHash' | 'ip' | 'expiresAt'>,
  ): Promise<PasswordResetTokenEntity> {
    return this.repo.save(this.repo.create(data));
  }

  /** The state of the token with this hash, and whose it is when known. */
  async inspect(tokenHash: string): Promise<{ state: ResetTokenState; userId: string | null }> {
    const row = await this.repo.findOneBy({ tokenHash });
    if (!row) return { state: 'unknown', userId: null };
    const state = row.usedAt ? 'used' : row.expiresAt.getTime() <= Date.now() ? 'expired' : 'valid';
    return { state, userId: row.userId };
  }

  /**
   * Uses the token and sets the user's new password hash in one transaction: the token is claimed with
   * a conditional UPDATE (unused and unexpired, checked by the database clock), so two concurrent uses
   * cannot both succeed; the user's other outstanding links die with it. Null when the token was not
   * usable (nothing changed).
   */
  async consume(tokenHash: string, passwordHash: string): Promise<string | null> {
    return this.dataSource.transaction(async (manager) => {
      // A SELECT over the UPDATE's RETURNING: TypeORM answers a bare UPDATE with [rows, count].
      const claimed: Array<{ user_id: string }> = await manager.query(
        `WITH claimed AS (
           UPDATE password_reset_tokens SET used_at = now()
            WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
            RETURNING user_id)
         SELECT user_id FROM claimed`,
        [tokenHash],
      );
      const userId = claimed[0]?.user_id;
      if (!userId) return null;
      await storeNewPassword(manager, userId, passwordHash);
      return userId;
    });
  }
}
