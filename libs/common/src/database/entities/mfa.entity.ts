import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** A user's TOTP factor (docs/security.md item 30); the secret only ever encrypted. */
@Entity({ name: 'mfa_totp' })
export class MfaTotpEntity {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /** How the data key is wrapped (the key provider's key reference). */
  @Column({ name: 'key_ref', type: 'varchar', length: 300 })
  keyRef!: string;

  /** The data key, wrapped by the key provider. */
  @Column({ name: 'wrapped_key', type: 'bytea' })
  wrappedKey!: Buffer;

  /** nonce || AES-256-GCM(data key, base32 secret) || tag. */
  @Column({ name: 'secret_ciphertext', type: 'bytea' })
  secretCiphertext!: Buffer;

  /** The last accepted time step (bigint comes back as a string). */
  @Column({ name: 'last_time_step', type: 'bigint', nullable: true })
  lastTimeStep!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** Null while the enrolment waits for its first code. */
  @Column({ name: 'activated_at', type: 'timestamptz', nullable: true })
  activatedAt!: Date | null;
}

/** One recovery code: only its SHA-256 is stored. */
@Entity({ name: 'mfa_recovery_codes' })
export class MfaRecoveryCodeEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'code_hash', type: 'char', length: 64 })
  codeHash!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;
}

/** A passkey (WebAuthn credential) of a user (docs/security.md item 30a): public data only. */
@Entity({ name: 'mfa_passkeys' })
export class MfaPasskeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /** The credential id, base64url. */
  @Column({ name: 'credential_id', type: 'varchar', length: 1400 })
  credentialId!: string;

  /** The COSE-encoded public key. */
  @Column({ name: 'public_key', type: 'bytea' })
  publicKey!: Buffer;

  /** The authenticator's signature counter at the last use (bigint comes back as a string). */
  @Column({ type: 'bigint', default: '0' })
  counter!: string;

  /** The transports the browser reported, comma-separated (`internal,hybrid`). */
  @Column({ type: 'varchar', length: 200, default: '' })
  transports!: string;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  /** `singleDevice` or `multiDevice` (a synced passkey). */
  @Column({ name: 'device_type', type: 'varchar', length: 20 })
  deviceType!: string;

  @Column({ name: 'backed_up', type: 'boolean', default: false })
  backedUp!: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
  lastUsedAt!: Date | null;
}
