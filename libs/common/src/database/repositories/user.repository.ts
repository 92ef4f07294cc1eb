import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager, type Repository } from 'typeorm';
import { UserEntity, type UserRole, type UserStatus } from '../entities/user.entity.js';

export class DuplicateUsernameError extends Error {
  constructor() {
    super('That username is already taken');
    this.name = 'DuplicateUsernameError';
  }
}

/**
 * Inside a transaction: the user's new password hash, and every outstanding password reset link of the
 * user invalidated with it (docs/security.md item 11b). Every route that changes a password ends here.
 */
export async function storeNewPassword(
  manager: EntityManager,
  id: string,
  passwordHash: string,
): Promise<void> {
  await manager.query('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [
    id,
    passwordHash,
  ]);
  await manager.query(
    'UPDATE password_reset_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL',
    [id],
  );
}

@Injectable()
export class UserRepository {
  private readonly repo: Repository<UserEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(UserEntity);
  }

  findById(id: string): Promise<UserEntity | null> {
    return this.repo.findOneBy({ id });
  }

  /** The user's own quota overrides (null: none, or no such user): every upload asks, so plain SQL. */
  async quotaOverrides(id: string): Promise<Pick<UserEntity, 'quotaBytes' | 'quotaFiles'> | null> {
    const [row]: Array<{ quota_bytes: string | null; quota_files: number | null }> = await this.repo.query(
      'SELECT quota_bytes, quota_files FROM users WHERE id = $1',
      [id],
    );
    if (!row) return null;
    return {
      quotaBytes: row.quota_bytes === null ? null : Number(row.quota_bytes),
      quotaFiles: row.quota_files,
    };
  }

  /** Case-insensitive, matching the unique index on lower(username). */
  findByUsername(username: string): Promise<UserEntity | null> {
    return this.repo
      .createQueryBuilder('u')
      .where('lower(u.username) = lower(:username)', { username })
      .getOne();
  }

  async create(
    data: Pick<UserEntity, 'username' | 'email' | 'passwordHash'> & Partial<Pick<UserEntity, 'role'>>,
  ): Promise<UserEntity> {
    try {
      return await this.repo.save(this.repo.create(data));
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new DuplicateUsernameError();
      throw error;
    }
  }

  /** The accounts registered with this address (case-insensitively; addresses are not unique). */
  findByEmail(email: string, limit = 10): Promise<UserEntity[]> {
    return this.repo
      .createQueryBuilder('u')
      .where('lower(u.email) = lower(:email)', { email })
      .orderBy('u.createdAt', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** Removes the account; its tokens, factors, shares and invites' links cascade (the files must be gone). */
  async delete(id: string): Promise<void> {
    await this.repo.delete({ id });
  }

  /** When the user last signed in (the admin's user list). */
  async recordLogin(id: string): Promise<void> {
    await this.repo.update({ id }, { lastLoginAt: new Date() });
  }

  /** The same password under a new hash (a rehash with stronger parameters at sign-in). */
  async updatePasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.repo.update({ id }, { passwordHash });
  }

  /** A new password: its hash, and the user's outstanding reset links invalidated ({@link storeNewPassword}). */
  async changePassword(id: string, passwordHash: string): Promise<void> {
    await this.repo.manager.transaction((manager) => storeNewPassword(manager, id, passwordHash));
  }
}

/** A row of the admin's user list: the account and what it stores. */
export interface AdminUserRow {
  id: string;
  username: string;
  email: string;
  role: UserRole;
  status: UserStatus;
  createdAt: Date;
  lastLoginAt: Date | null;
  quotaBytes: number | null;
  quotaFiles: number | null;
  /** Files and bytes as the quota counts them (every file but failed, rejected and infected ones). */
  files: number;
  bytes: number;
  mfa: boolean;
}

/** Escapes LIKE's wildcards so a search term matches itself. */
function likeTerm(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The user list and account switches of the admin area (apps/gateway/src/admin). */
@Injectable()
export class AdminUserRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Users whose name or address contains `search` (all without one), newest first, a page at a time. */
  async list(options: { search?: string; limit: number; offset: number; id?: string }): Promise<{
    items: AdminUserRow[];
    total: number;
  }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.search) {
      params.push(likeTerm(options.search));
      where.push(`(u.username ILIKE $${params.length} OR u.email ILIKE $${params.length})`);
    }
    if (options.id) {
      params.push(options.id);
      where.push(`u.id = $${params.length}`);
    }
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const [{ total }] = (await this.dataSource.query(
      `SELECT count(*)::int AS total FROM users u ${filter}`,
      params,
    )) as [{ total: number }];
    params.push(options.limit, options.offset);
    const rows: Array<Record<string, unknown>> = await this.dataSource.query(
      `SELECT u.id, u.username, u.email, u.role, u.status, u.created_at, u.last_login_at,
              u.quota_bytes, u.quota_files,
              coalesce(f.files, 0)::int AS files, coalesce(f.bytes, 0)::bigint AS bytes,
              (EXISTS (SELECT 1 FROM mfa_totp m WHERE m.user_id = u.id AND m.activated_at IS NOT NULL)
                OR EXISTS (SELECT 1 FROM mfa_passkeys p WHERE p.user_id = u.id)) AS mfa
         FROM users u
         LEFT JOIN LATERAL (
           SELECT count(*) AS files, sum(size) AS bytes FROM files
            WHERE owner_id = u.id AND status NOT IN ('failed', 'rejected', 'infected')
         ) f ON true
         ${filter}
        ORDER BY u.created_at DESC, u.id DESC
        LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return {
      total,
      items: rows.map((r) => ({
        id: r.id as string,
        username: r.username as string,
        email: r.email as string,
        role: r.role as UserRole,
        status: r.status as UserStatus,
        createdAt: r.created_at as Date,
        lastLoginAt: (r.last_login_at as Date | null) ?? null,
        quotaBytes: r.quota_bytes === null ? null : Number(r.quota_bytes),
        quotaFiles: r.quota_files === null ? null : Number(r.quota_files),
        files: Number(r.files),
        bytes: Number(r.bytes),
        mfa: r.mfa === true,
      })),
    };
  }

  async find(id: string): Promise<AdminUserRow | null> {
    return (await this.list({ id, limit: 1, offset: 0 })).items[0] ?? null;
  }

  /**
   * Moves the user from one of `from` to `to`; false when it was in another state (or is gone). The
   * delete-user job's `deleting` is never left by this.
   */
  async setStatus(id: string, to: UserStatus, from: UserStatus[]): Promise<boolean> {
    const result: [unknown[], number] = await this.dataSource.query(
      'UPDATE users SET status = $2, updated_at = now() WHERE id = $1 AND status = ANY($3::varchar[])',
      [id, to, from],
    );
    return result[1] > 0;
  }

  async setRole(id: string, role: UserRole): Promise<void> {
    await this.dataSource.query('UPDATE users SET role = $2, updated_at = now() WHERE id = $1', [id, role]);
  }

  /** Per-user quota overrides (null: the installation's QUOTA_BYTES / QUOTA_FILES; 0: no limit). */
  async setQuota(id: string, quotaBytes: number | null, quotaFiles: number | null): Promise<boolean> {
    const result: [unknown[], number] = await this.dataSource.query(
      'UPDATE users SET quota_bytes = $2, quota_files = $3, updated_at = now() WHERE id = $1',
      [id, quotaBytes, quotaFiles],
    );
    return result[1] > 0;
  }

  /** Promotes the named accounts that exist (ADMIN_USERNAMES); returns those promoted now. */
  async promote(usernames: readonly string[]): Promise<Array<{ id: string; username: string }>> {
    if (usernames.length === 0) return [];
    const [rows]: [Array<{ id: string; username: string }>, number] = await this.dataSource.query(
      `UPDATE users SET role = 'admin', updated_at = now()
        WHERE lower(username) = ANY($1::varchar[]) AND role <> 'admin' RETURNING id, username`,
      [usernames.map((u) => u.toLowerCase())],
    );
    return rows;
  }
}
