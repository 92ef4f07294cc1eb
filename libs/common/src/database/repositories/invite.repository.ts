import { Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { InviteEntity } from '../entities/invite.entity.js';

/** Why an invite cannot be used, as the register page tells it. */
export type InviteProblem = 'unknown' | 'expired' | 'used' | 'revoked';

/** Registration invites (REGISTRATION=invite): single-use, expiring, kept as the SHA-256 of the token. */
@Injectable()
export class InviteRepository {
  private readonly repo: Repository<InviteEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(InviteEntity);
  }

  create(data: Pick<InviteEntity, 'tokenHash' | 'email' | 'createdBy' | 'expiresAt'>): Promise<InviteEntity> {
    return this.repo.save(this.repo.create(data));
  }

  findByHash(tokenHash: string): Promise<InviteEntity | null> {
    return this.repo.findOneBy({ tokenHash });
  }

  /** The invite if it can still be used, else why not. */
  async usable(tokenHash: string, now = new Date()): Promise<InviteEntity | InviteProblem> {
    const invite = await this.findByHash(tokenHash);
    if (!invite) return 'unknown';
    if (invite.revokedAt) return 'revoked';
    if (invite.usedAt) return 'used';
    if (invite.expiresAt.getTime() <= now.getTime()) return 'expired';
    return invite;
  }

  /**
   * Takes the invite for one registration, atomically (two registrations racing for one invite: one
   * wins); null when it is no longer usable. {@link release} gives it back if the registration then fails.
   */
  async claim(tokenHash: string): Promise<InviteEntity | null> {
    const rows: [Array<Record<string, unknown>>, number] = await this.repo.query(
      `UPDATE invites SET used_at = now()
        WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
        RETURNING id`,
      [tokenHash],
    );
    const id = rows[0]?.[0]?.id as string | undefined;
    return id ? this.repo.findOneBy({ id }) : null;
  }

  async release(id: string): Promise<void> {
    await this.repo.update({ id }, { usedAt: null });
  }

  async markUsedBy(id: string, userId: string): Promise<void> {
    await this.repo.update({ id }, { usedBy: userId });
  }

  /** Revokes an unused invite; false when there is none such. */
  async revoke(id: string): Promise<boolean> {
    const result: [unknown[], number] = await this.repo.query(
      'UPDATE invites SET revoked_at = now() WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL',
      [id],
    );
    return result[1] > 0;
  }

  list(limit = 100): Promise<InviteEntity[]> {
    return this.repo.find({ order: { createdAt: 'DESC' }, take: limit });
  }
}
