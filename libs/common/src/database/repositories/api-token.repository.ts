import { Injectable } from '@nestjs/common';
import { DataSource, IsNull, type Repository } from 'typeorm';
import { ApiTokenEntity } from '../entities/api-token.entity.js';
import type { UserRole } from '../entities/user.entity.js';
import { preparedStatement } from '../prepared-statement.js';

/** An active token and its owner, as bearer authentication needs them. */
export interface ActiveTokenOwner {
  tokenId: string;
  lastUsedAt: Date | null;
  /** Returned rather than filtered on, so an expired token can be told apart from an unknown one. */
  expiresAt: Date | null;
  userId: string;
  username: string;
  role: UserRole;
  /** The owner's own quota overrides (null: the installation's), for an upload this request may be. */
  quotaBytes: number | null;
  quotaFiles: number | null;
}

@Injectable()
export class ApiTokenRepository {
  private readonly repo: Repository<ApiTokenEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(ApiTokenEntity);
  }

  create(data: Pick<ApiTokenEntity, 'userId' | 'name' | 'tokenHash' | 'expiresAt'>): Promise<ApiTokenEntity> {
    return this.repo.save(this.repo.create(data));
  }

  /**
   * The active token with this hash and the user it belongs to, in one round trip: this runs on every
   * API request, so it is plain SQL rather than a query builder.
   */
  async findActiveWithOwner(tokenHash: string): Promise<ActiveTokenOwner | null> {
    const rows: Array<{
      token_id: string;
      last_used_at: Date | null;
      expires_at: Date | null;
      user_id: string;
      username: string;
      role: UserRole;
      quota_bytes: string | null;
      quota_files: number | null;
    }> = await this.repo.query(
      // A disabled (or being deleted) user's tokens stop working with the next request.
      preparedStatement(
        'tess_api_tokens_active_with_owner',
        `SELECT t.id AS token_id, t.last_used_at, t.expires_at, u.id AS user_id, u.username, u.role,
              u.quota_bytes, u.quota_files
         FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.status = 'active'`,
      ),
      [tokenHash],
    );
    const row = rows[0];
    return row
      ? {
          tokenId: row.token_id,
          lastUsedAt: row.last_used_at,
          expiresAt: row.expires_at,
          userId: row.user_id,
          username: row.username,
          role: row.role,
          quotaBytes: row.quota_bytes === null ? null : Number(row.quota_bytes),
          quotaFiles: row.quota_files,
        }
      : null;
  }

  listForUser(userId: string): Promise<ApiTokenEntity[]> {
    return this.repo.find({ where: { userId, revokedAt: IsNull() }, order: { createdAt: 'DESC' } });
  }

  /** Revokes the user's token; false when no such active token belongs to that user. */
  async revoke(userId: string, id: string): Promise<boolean> {
    const result = await this.repo.update({ id, userId, revokedAt: IsNull() }, { revokedAt: new Date() });
    return (result.affected ?? 0) > 0;
  }

  async touch(id: string): Promise<void> {
    await this.repo.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [id]);
  }
}
