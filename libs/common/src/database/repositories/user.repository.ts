import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager, type Repository } from 'typeorm';
import { UserEntity } from '../entities/user.entity.js';

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

  /** Case-insensitive, matching the unique index on lower(username). */
  findByUsername(username: string): Promise<UserEntity | null> {
    return this.repo
      .createQueryBuilder('u')
      .where('lower(u.username) = lower(:username)', { username })
      .getOne();
  }

  async create(data: Pick<UserEntity, 'username' | 'email' | 'passwordHash'>): Promise<UserEntity> {
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

  /** The same password under a new hash (a rehash with stronger parameters at sign-in). */
  async updatePasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.repo.update({ id }, { passwordHash });
  }

  /** A new password: its hash, and the user's outstanding reset links invalidated ({@link storeNewPassword}). */
  async changePassword(id: string, passwordHash: string): Promise<void> {
    await this.repo.manager.transaction((manager) => storeNewPassword(manager, id, passwordHash));
  }
}
