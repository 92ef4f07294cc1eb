import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * `receiving`: a resumable (tus) upload still arriving; its staged bytes are in TEMP_DIR, its size reserved.
 * `rejected`, `infected`: refused by the content checks (nothing stored).
 */
export const FILE_STATUSES = [
  'receiving',
  'queued',
  'processing',
  'stored',
  'failed',
  'corrupt',
  'rejected',
  'infected',
] as const;
export type FileStatus = (typeof FILE_STATUSES)[number];

/** Final statuses of files the content checks refused: nothing of them is stored. */
export const REFUSED_STATUSES = ['rejected', 'infected'] as const satisfies readonly FileStatus[];
export type RefusedStatus = (typeof REFUSED_STATUSES)[number];

/** Postgres bigint arrives as a string; sizes stay below 2^53 so a number is exact. */
const bigintAsNumber = {
  to: (v: number | null | undefined) => v,
  from: (v: string | null) => (v === null ? null : Number(v)),
};

@Entity({ name: 'files' })
export class FileEntity {
  /** Server-generated UUID; also the BullMQ job id and the object key suffix. */
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId!: string;

  /** The folder the file lives in (folders.id); null is the root. */
  @Column({ name: 'folder_id', type: 'uuid', nullable: true })
  folderId!: string | null;

  /** Normalized display name (never used as a path); unique per folder, case-insensitively. */
  @Column({ type: 'varchar', length: 255 })
  filename!: string;

  @Column({ name: 'content_type', type: 'varchar', length: 255 })
  contentType!: string;

  /** Plaintext size in bytes. */
  @Column({ type: 'bigint', transformer: bigintAsNumber })
  size!: number;

  @Column({ type: 'varchar', length: 16 })
  status!: FileStatus;

  @Column({ type: 'char', length: 40, nullable: true })
  sha1!: string | null;

  @Column({ type: 'char', length: 64, nullable: true })
  sha256!: string | null;

  /** The type sniffed from the content by the worker (magic bytes or text inspection); null until then. */
  @Column({ name: 'detected_type', type: 'varchar', length: 255, nullable: true })
  detectedType!: string | null;

  /** A disagreement between name/declared type and content that TYPE_MISMATCH=flag let through. */
  @Column({ name: 'type_warning', type: 'text', nullable: true })
  typeWarning!: string | null;

  /** The scanner that passed the file (clamd version/signature database); null when scanning is off. */
  @Column({ name: 'scanned_with', type: 'varchar', length: 255, nullable: true })
  scannedWith!: string | null;

  /** Size of the encrypted object (header + segments). */
  @Column({ name: 'encrypted_size', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  encryptedSize!: number | null;

  @Column({ name: 'storage_driver', type: 'varchar', length: 16, nullable: true })
  storageDriver!: string | null;

  @Column({ name: 'object_key', type: 'varchar', length: 512, nullable: true })
  objectKey!: string | null;

  /** How to unwrap the data key: master key version or per-file secret name. */
  @Column({ name: 'key_ref', type: 'varchar', length: 1024, nullable: true })
  keyRef!: string | null;

  /** The data key wrapped by the master key (envelope mode); also inside the object header. */
  @Column({ name: 'wrapped_key', type: 'bytea', nullable: true })
  wrappedKey!: Buffer | null;

  /** Server-generated temp path of the upload until the object is stored. */
  /** A `receiving` (tus) upload's end of life: after it the upload answers 410 and the sweeper removes it. */
  @Column({ name: 'upload_expires_at', type: 'timestamptz', nullable: true })
  uploadExpiresAt!: Date | null;

  /** The SHA-256 the client computed and declared before sending (lowercase hex), if it did. */
  @Column({ name: 'client_sha256', type: 'char', length: 64, nullable: true })
  clientSha256!: string | null;

  /** Whether the stored plaintext's SHA-256 equals `clientSha256` (null: the client declared none). */
  @Column({ name: 'client_verified', type: 'boolean', nullable: true })
  clientVerified!: boolean | null;

  @Column({ name: 'temp_path', type: 'varchar', length: 1024, nullable: true })
  tempPath!: string | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  /** The current version's number (docs/architecture.md, "File versions"); 1 until a second is stored. */
  @Column({ type: 'int', default: 1 })
  version!: number;

  /** How many stored versions the file has (0 until its first is stored); kept with file_versions. */
  @Column({ name: 'version_count', type: 'int', default: 0 })
  versionCount!: number;

  /**
   * The id the current object and data key were made under (the object header's file id): null for the
   * file's own id, another id once a later version (an upload row of its own) became current.
   */
  @Column({ name: 'object_id', type: 'uuid', nullable: true })
  objectId!: string | null;

  /** Set on the upload row of a new version of that file while it is in the pipeline (never listed). */
  @Column({ name: 'version_of', type: 'uuid', nullable: true })
  versionOf!: string | null;

  @Column({ type: 'int', default: 0 })
  attempts!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Column({ name: 'processing_started_at', type: 'timestamptz', nullable: true })
  processingStartedAt!: Date | null;

  @Column({ name: 'stored_at', type: 'timestamptz', nullable: true })
  storedAt!: Date | null;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt!: Date | null;
}
