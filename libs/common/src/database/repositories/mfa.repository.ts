import { Injectable } from '@nestjs/common';
import { DataSource, IsNull, type Repository } from 'typeorm';
import { MfaRecoveryCodeEntity, MfaTotpEntity } from '../entities/mfa.entity.js';

/** A TOTP secret as stored: encrypted under a data key that the key provider wrapped. */
export interface SealedTotpSecret {
  keyRef: string;
  wrappedKey: Buffer;
  secretCiphertext: Buffer;
}

/**
 * The second factors (docs/security.md item 30). Every "use once" step (a TOTP time step, a recovery
 * code) is one conditional UPDATE, so two concurrent requests with the same code cannot both pass.
 */
@Injectable()
export class MfaRepository {
  private readonly totp: Repository<MfaTotpEntity>;
  private readonly codes: Repository<MfaRecoveryCodeEntity>;

  constructor(private readonly dataSource: DataSource) {
    this.totp = dataSource.getRepository(MfaTotpEntity);
    this.codes = dataSource.getRepository(MfaRecoveryCodeEntity);
  }

  findTotp(userId: string): Promise<MfaTotpEntity | null> {
    return this.totp.findOneBy({ userId });
  }

  /** Whether the user has an active (activated) TOTP factor. */
  async hasActiveTotp(userId: string): Promise<boolean> {
    const row = await this.totp.findOneBy({ userId });
    return row?.activatedAt != null;
  }

  /** Starts (or restarts) an enrolment: the sealed secret, not active yet. Refuses over an active one. */
  async startTotp(userId: string, sealed: SealedTotpSecret): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `INSERT INTO mfa_totp (user_id, key_ref, wrapped_key, secret_ciphertext)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id) DO UPDATE
         SET key_ref = EXCLUDED.key_ref, wrapped_key = EXCLUDED.wrapped_key,
             secret_ciphertext = EXCLUDED.secret_ciphertext, last_time_step = NULL,
             created_at = now(), activated_at = NULL
         WHERE mfa_totp.activated_at IS NULL
       RETURNING user_id`,
      [userId, sealed.keyRef, sealed.wrappedKey, sealed.secretCiphertext],
    );
    return rows.length === 1;
  }

  /**
   * Records `timeStep` as used when it is later than the last one (and, with `activate`, turns the
   * pending factor on). False when the step was already used: a replayed code.
   */
  async claimTimeStep(userId: string, timeStep: number, activate = false): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH claimed AS (
         UPDATE mfa_totp SET last_time_step = $2${activate ? ', activated_at = now()' : ''}
          WHERE user_id = $1 AND (last_time_step IS NULL OR last_time_step < $2)
            AND activated_at IS ${activate ? '' : 'NOT '}NULL
          RETURNING user_id)
       SELECT user_id FROM claimed`,
      [userId, timeStep],
    );
    return rows.length === 1;
  }

  /** Removes the user's TOTP factor and recovery codes; the sealed secret removed, if there was one. */
  async removeAll(userId: string): Promise<MfaTotpEntity | null> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOneBy(MfaTotpEntity, { userId });
      await manager.delete(MfaRecoveryCodeEntity, { userId });
      await manager.delete(MfaTotpEntity, { userId });
      return row;
    });
  }

  /** Replaces the user's recovery codes (by their hashes). */
  async replaceRecoveryCodes(userId: string, codeHashes: string[]): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.delete(MfaRecoveryCodeEntity, { userId });
      await manager.insert(
        MfaRecoveryCodeEntity,
        codeHashes.map((codeHash) => ({ userId, codeHash })),
      );
    });
  }

  /** Uses the unused recovery code with this hash; false when there is none. */
  async useRecoveryCode(userId: string, codeHash: string): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH used AS (
         UPDATE mfa_recovery_codes SET used_at = now()
          WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
          RETURNING id)
       SELECT id FROM used`,
      [userId, codeHash],
    );
    return rows.length === 1;
  }

  /** How many unused recovery codes the user has left. */
  remainingRecoveryCodes(userId: string): Promise<number> {
    return this.codes.countBy({ userId, usedAt: IsNull() });
  }
}
