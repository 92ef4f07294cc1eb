import { Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { UserEntity } from '../entities/user.entity.js';

export class DuplicateUsernameError extends Error {
  constructor() {
    super('That username is already taken');
    this.name = 'DuplicateUsernameError';
  }
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

  async updatePasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.repo.update({ id }, { passwordHash });
  }
}
