import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import {
  AuditRepository,
  type CommittedVersion,
  type ConfiguredKeyProvider,
  ciphertextLength,
  type EncryptFileResult,
  type FileEntity,
  FileRepository,
  isStagingIntegrityError,
  type JobProgress,
  KEY_PROVIDER,
  KeyUnwrapError,
  OBJECT_STORE,
  type ObjectStore,
  objectKeyFor,
  StagingIntegrityError,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
  type WrappedDataKey,
} from '#common';
import type { HandlerJob, JobHandler } from '../jobs/job-handler.js';
import { LockLostError } from '../jobs/job-locks.js';
import { ScannerUnavailableError } from '../scan/clamd-client.js';
import { PruneVersionsHandler } from '../versions/prune-versions.handler.js';
import { encryptPass } from './encrypt-pass.js';
import { openPlaintextFile, type PlaintextSource, StagedPlaintext } from './plaintext-source.js';
import { ContentChecks } from './taps/content-checks.js';
import { HashPool } from './taps/hash-pool.js';
import { PlaintextRejectedError } from './taps/plaintext-tap.js';
import { type FileFacts, plaintextTaps, SMALL_FILE, type TappedFile } from './taps/plaintext-taps.js';

/**
 * Bytes per read of the temp file, and read buffers in flight per job (measured in `npm run bench`: 4 MiB x 3
 * was no faster within the noise and raised the worker's peak RSS by about 20 MiB).
 */
const READ_CHUNK = 2 * 1024 * 1024;
const READ_BUFFERS = 4;
const PROGRESS_INTERVAL_MS = 250;

export type EncryptFileJob = HandlerJob<'encrypt-file'>;
/** A run on a file: the encrypt-file job, or its follower (same payload, same lock, same commit). */
export type FileJob = HandlerJob<'encrypt-file' | 'follow-file'>;

/**
 * The heart of TESS: one streaming pass over the upload's temp file feeds the plaintext to its taps (SHA-1
 * and SHA-256 on hash threads, see plaintextTaps, so a large file uses more than one core), encrypts it into the
 * TESS object format (AES-256-GCM segments under a fresh data key) on this thread and streams the
 * ciphertext to the object store. Memory is bounded by the read buffers and the store's part buffers,
 * never by the file size.
 *
 * Idempotent: the object key is deterministic (`objects/<fileId>`), so a re-run overwrites rather than
 * duplicates; a run that finds the file already stored (or deleted) does nothing; leftovers of a
 * crashed attempt (open multipart uploads, partial files) are aborted first. The temp file is removed
 * only after the `stored` row is committed.
 */
@Injectable()
export class EncryptFileHandler implements JobHandler<'encrypt-file'> {
  private readonly logger = new Logger(EncryptFileHandler.name);

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    private readonly metrics: TessMetrics,
    private readonly hashPool: HashPool,
    private readonly checks: ContentChecks,
    private readonly retention: PruneVersionsHandler,
  ) {}

  tempPathOf(file: Pick<FileEntity, 'id' | 'tempPath'>): string {
    return join(this.config.tempDir, file.tempPath ?? file.id);
  }

  /** One run per file at a time: a duplicate delivery waits, then finds the file stored. */
  lockName({ fileId }: EncryptFileJob['data']): string {
    return `encrypt-file:${fileId}`;
  }

  outcome(result: EncryptFileResult): string {
    return result.skipped ? 'skipped' : 'stored';
  }

  async run(job: EncryptFileJob, signal?: AbortSignal): Promise<EncryptFileResult> {
    const { fileId } = job.data;
    const file = await this.files.claimForProcessing(fileId);
    // Deleted meanwhile, or a duplicate delivery of a job that already finished.
    if (!file) return this.skipped(await this.files.findById(fileId), fileId);

    const tempPath = this.tempPathOf(file);
    const { source, dataKey, wrapped } = await this.openUpload(file, tempPath);
    try {
      const key = objectKeyFor(fileId);
      await this.store.abortIncomplete(key);
      const pass = await this.encryptAndStore(job, source, key, dataKey, wrapped, file, signal);
      const outcome = await this.markStored(job, file, key, wrapped, pass, signal);
      return 'skipped' in outcome
        ? outcome.skipped
        : await this.announceStored(job, file, pass, outcome.committed);
    } catch (error) {
      if (isStagingIntegrityError(error)) throw new StagedUploadRejected(error);
      throw error;
    } finally {
      dataKey.fill(0);
      await source.close().catch(() => undefined);
    }
  }

  /**
   * The commit of a pass (this run's, or a follower's: docs/security.md item 40): the sizes checked, the
   * hashes recorded with the key, the row `stored` under the fence of the lock this run holds. When the row
   * moved on meanwhile, nothing is committed: a deleted file's object and key are removed, a row that is
   * no longer processing is left alone (a skipped result).
   */
  async markStored(
    job: FileJob,
    file: FileEntity,
    key: string,
    wrapped: WrappedDataKey,
    pass: StoredPass,
    signal?: AbortSignal,
  ): Promise<{ committed: CommittedVersion } | { skipped: EncryptFileResult }> {
    const { fileId } = job.data;
    const { facts, plaintextBytes, encryptedSize } = pass;
    if (plaintextBytes !== file.size) {
      throw new UnrecoverableError(
        `Read ${plaintextBytes} bytes but the upload had ${file.size}; upload it again.`,
      );
    }
    const { sha1, sha256 } = facts;
    await this.keys.recordHashes(fileId, wrapped, { sha1, sha256 });
    if (file.size > SMALL_FILE) {
      await job.updateProgress({
        stage: 'finalizing',
        bytesDone: file.size,
        bytesTotal: file.size,
        ownerId: file.ownerId,
      } satisfies JobProgress);
    }
    const committed = await this.files.markStored(
      fileId,
      {
        ...facts,
        clientVerified: file.clientSha256 ? true : null,
        encryptedSize,
        storageDriver: this.store.driver,
        objectKey: key,
        keyRef: wrapped.keyRef,
        wrappedKey: wrapped.wrappedKey.length ? wrapped.wrappedKey : null,
      },
      job.fence,
      // The `file.stored` event commits with the row (one transaction, one WAL flush per stored file).
      // A new version's upload row is folded into its file by then: the event names the file.
      (m, { fileId: storedFile, version }) =>
        this.audit.recordWithin(m, {
          action: 'file.stored',
          userId: file.ownerId,
          fileId: storedFile,
          details: {
            filename: file.filename,
            size: file.size,
            sha256,
            attempt: job.attemptsMade + 1,
            version,
            ...(storedFile !== fileId ? { upload: fileId } : {}),
          },
        }),
    );
    if (committed) return { committed };
    signal?.throwIfAborted();
    const current = await this.files.findById(fileId);
    // Still processing, yet not committed under our lock: the lock's session is gone (item 34).
    if (current?.status === 'processing' && job.fence) throw new LockLostError(this.lockName(job.data));
    if (current) {
      // Not ours to undo: the row moved on without us (it may reference this very object key).
      this.logger.warn(`job ${job.id} file ${fileId}: the row is ${current.status} now; not committing`);
      return { skipped: await this.skipped(current, fileId) };
    }
    // The file was deleted while we worked: leave nothing of it behind.
    await this.store.delete(key);
    await this.keys.destroyDataKey(fileId, wrapped);
    return { skipped: await this.skipped(null, fileId) };
  }

  /** After the commit (which recorded the audit event): the staged upload removed, retention, the job's result. */
  async announceStored(
    job: FileJob,
    file: FileEntity,
    pass: StoredPass,
    committed: CommittedVersion,
  ): Promise<EncryptFileResult> {
    const { sha1, sha256 } = pass.facts;
    await unlink(this.tempPathOf(file)).catch(() => undefined);
    // A new version's upload row is folded into its file now: events name the file.
    const { fileId: storedFile, version } = committed;
    if (version > 1) await this.retention.pruneSoon(storedFile);
    this.logger.log(
      `job ${job.id} file ${storedFile}: stored ${file.size} bytes (${pass.encryptedSize} encrypted), version ${version}`,
    );
    return {
      fileId: storedFile,
      sha1,
      sha256,
      size: file.size,
      encryptedSize: pass.encryptedSize,
      ownerId: file.ownerId,
      version,
    };
  }

  /**
   * Opens the upload for the pass. A row with a key reference was staged encrypted by the gateway
   * (libs/common/src/staging, docs/format.md): its data key is unwrapped and the staging file's header and
   * seal are authenticated before anything is written to the store; the same data key then protects the
   * object (object and staging keys are derived from it under distinct HKDF labels). A row without one was
   * accepted as plaintext by a gateway older than staging encryption (a rolling upgrade): it is read as
   * plaintext once and gets a fresh data key.
   */
  private async openUpload(
    file: FileEntity,
    tempPath: string,
  ): Promise<{
    source: PlaintextSource & { minimumBuffer: number };
    dataKey: Buffer;
    wrapped: WrappedDataKey;
  }> {
    const gone = () =>
      new UnrecoverableError('The uploaded data for this file is no longer on the server; upload it again.');
    if (!file.keyRef) {
      const info = await stat(tempPath).catch(() => null);
      if (!info) throw gone();
      if (info.size !== file.size) {
        throw new UnrecoverableError(
          `The uploaded data changed size (${info.size} bytes on disk, ${file.size} recorded); upload it again.`,
        );
      }
      const source = await openPlaintextFile(tempPath);
      const { dataKey, ...wrapped } = await this.keys.createDataKey(file.id);
      return { source: Object.assign(source, { minimumBuffer: 1 }), dataKey, wrapped };
    }
    const wrapped = { keyRef: file.keyRef, wrappedKey: file.wrappedKey ?? Buffer.alloc(0) };
    const dataKey = await this.keys.unwrapDataKey(file.id, wrapped).catch((error: unknown) => {
      if (error instanceof KeyUnwrapError) {
        throw new UnrecoverableError(`The upload's data key cannot be recovered: ${error.message}`);
      }
      throw error;
    });
    try {
      const source = await StagedPlaintext.open(tempPath, { dataKey, fileId: file.id });
      if (source.length !== file.size) {
        await source.close();
        throw new StagingIntegrityError(
          'length',
          `the staged upload holds ${source.length} bytes but ${file.size} were received`,
        );
      }
      return { source, dataKey, wrapped };
    } catch (error) {
      dataKey.fill(0);
      if ((error as { code?: string }).code === 'ENOENT') throw gone();
      if (isStagingIntegrityError(error)) throw new StagedUploadRejected(error);
      throw error;
    }
  }

  /**
   * Records a failure: back to queued when BullMQ will retry, `failed` when final (the staging file kept
   * for an admin's retry until TEMP_MAX_AGE, unless the failure is permanent);
   * a file the content checks refused ends `rejected` or `infected`, audited with the rule (and the
   * signature and scanner version).
   */
  async onFailed(job: EncryptFileJob, error: Error, final: boolean): Promise<void> {
    const { fileId, ownerId } = job.data;
    const message = readableError(error);
    if (!final) {
      await this.files.markRetrying(fileId, `Attempt ${job.attemptsMade + 1} failed (${message}); retrying.`);
      return;
    }
    if (error instanceof PlaintextRejectedError) {
      const file = await this.files.findById(fileId);
      await this.files.markRefused(fileId, error.status, message, error.details.detectedType ?? null);
      if (file) await unlink(this.tempPathOf(file)).catch(() => undefined);
      await this.audit.record({
        action: error.status === 'infected' ? 'file.infected' : 'file.rejected',
        userId: ownerId,
        fileId,
        details: { error: message, ...error.details },
      });
      this.logger.warn(`file ${fileId}: ${error.status} (${error.details.rule}): ${message}`);
      return;
    }
    await this.files.markFailed(fileId, message);
    const file = await this.files.findById(fileId);
    const integrity = error instanceof StagedUploadRejected ? error.cause : undefined;
    // A permanent failure (staged bytes that failed authentication, a client hash mismatch: an
    // UnrecoverableError) leaves nothing a retry could use. Any other final failure (the store or the key
    // service down for all attempts) keeps the encrypted staging file until TEMP_MAX_AGE, so that an
    // admin's retry (the admin area's failed jobs) can still store the file; the sweeper removes it then.
    const permanent = integrity !== undefined || error instanceof UnrecoverableError;
    if (file && permanent) await unlink(this.tempPathOf(file)).catch(() => undefined);
    await this.audit.record({
      action: 'file.failed',
      userId: ownerId,
      fileId,
      details: {
        // The name as it was: the event outlives the file.
        ...(file ? { filename: file.filename } : {}),
        error: message,
        ...(integrity
          ? { reason: 'staging-integrity', check: integrity.reason, record: integrity.recordIndex ?? null }
          : {}),
      },
    });
    if (integrity) this.logger.warn(`file ${fileId}: staged upload rejected (${integrity.message})`);
  }

  async skipped(file: FileEntity | null, fileId: string): Promise<EncryptFileResult> {
    if (file?.status === 'stored' && file.sha1 && file.sha256) {
      await unlink(this.tempPathOf(file)).catch(() => undefined);
      return {
        fileId,
        sha1: file.sha1,
        sha256: file.sha256,
        size: file.size,
        encryptedSize: file.encryptedSize ?? 0,
        skipped: true,
      };
    }
    return { fileId, sha1: '', sha256: '', size: 0, encryptedSize: 0, skipped: true };
  }

  /**
   * The pass into the object store. `file` is read again when the pass ends (the taps' verdicts, the client's
   * SHA-256): a follower learns the row's final name, type and declaration only then; its `size` until
   * then is an upper bound (a hint for the store's part size).
   */
  async encryptAndStore(
    job: FileJob,
    source: PlaintextSource & { minimumBuffer: number },
    key: string,
    dataKey: Buffer,
    wrapped: WrappedDataKey,
    file: TappedFile & Pick<FileEntity, 'clientSha256'>,
    signal?: AbortSignal,
  ): Promise<StoredPass> {
    const { size } = file;
    const metrics = this.metrics;
    let bytesDone = 0;
    let lastReport = 0;
    const report = (force = false) => {
      const now = Date.now();
      if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return;
      lastReport = now;
      const progress: JobProgress = {
        stage: 'encrypting',
        bytesDone,
        bytesTotal: size,
        ownerId: job.data.ownerId,
      };
      job.updateProgress(progress).catch(() => undefined);
    };
    // A small file is done within milliseconds: no progress events.
    const small = size <= SMALL_FILE;
    if (!small) report(true);
    const pass = encryptPass({
      source: async () => source,
      encrypt: { dataKey, fileId: job.data.fileId, ...wrapped },
      taps: plaintextTaps(file, this.hashPool, this.checks),
      // No bigger read buffers than the file needs, but room for a whole staging record.
      chunkSize: Math.max(source.minimumBuffer, Math.min(READ_CHUNK, size)),
      buffers: READ_BUFFERS,
      onPlaintext: (bytes) => {
        bytesDone += bytes;
        metrics.bytes.inc({ stage: 'hashed' }, bytes);
        if (!small) report();
      },
      // The SHA-256 the client computed before sending must be the one of what arrived.
      check: ({ sha256 }) => {
        const { clientSha256 } = file;
        if (clientSha256 && sha256 !== clientSha256) throw new ClientHashMismatch(clientSha256, sha256);
      },
    });
    const lengthOf = (plaintext: number) =>
      ciphertextLength(plaintext, {
        headerLength: pass.encryptor.header.length,
        segmentSize: pass.encryptor.segmentSize,
      });
    // The pass never touches a body chunk again: the store frees each once written (PutObjectOptions). S3
    // part hashes go to the hash threads, not this one (a small file's single request is hashed inline).
    const sha256 = small ? undefined : (bytes: Buffer) => this.hashPool.digest('sha256', bytes);
    const putOptions = { signal, size: lengthOf(size), releaseChunks: true, sha256 };
    const stored = await this.store.put(key, pass.body, putOptions).catch(async (error) => {
      // The store only saw its body end early; the pass knows why (a staged record that did not verify, a
      // tap that refused the file or could not check it).
      const cause = await pass.result.then(
        () => null,
        (reason: unknown) => reason,
      );
      throw isPassFailure(cause) ? cause : error;
    });
    const { plaintextBytes, ...facts } = await pass.result;
    metrics.bytes.inc({ stage: 'encrypted' }, stored.size);
    metrics.bytes.inc({ stage: 'uploaded' }, stored.size);
    if (!small) report(true);
    const expected = lengthOf(plaintextBytes);
    if (stored.size !== expected) {
      throw new Error(`Stored ${stored.size} bytes but the encrypted object should have ${expected}`);
    }
    return { facts, plaintextBytes, encryptedSize: stored.size };
  }
}

/** What a finished pass stored: the taps' facts, the plaintext read and the object's size. */
export interface StoredPass {
  facts: FileFacts;
  plaintextBytes: number;
  encryptedSize: number;
}

/**
 * The client declared the SHA-256 of its file before sending it (tus `Upload-Metadata` `sha256`, or the
 * multipart `sha256` field) and the plaintext that arrived has another: permanent, nothing is stored.
 */
export class ClientHashMismatch extends UnrecoverableError {
  constructor(declared: string, actual: string) {
    super(
      `client-hash-mismatch: the file that arrived (SHA-256 ${actual}) is not the one your device sent ` +
        `(SHA-256 ${declared}); nothing was stored. Upload it again.`,
    );
    this.name = 'ClientHashMismatch';
  }
}

/**
 * A staged upload that failed authentication: permanent (retrying reads the same bytes), nothing is stored,
 * and the row ends `failed` with a message starting `staging-integrity`.
 */
export class StagedUploadRejected extends UnrecoverableError {
  constructor(override readonly cause: StagingIntegrityError) {
    super(`${cause.message}; nothing was stored. Upload the file again.`);
  }
}

/** The pass's own reasons for ending early: the store's error then only says its body was cut. */
function isPassFailure(cause: unknown): cause is Error {
  return (
    isStagingIntegrityError(cause) ||
    cause instanceof PlaintextRejectedError ||
    cause instanceof ScannerUnavailableError ||
    cause instanceof UnrecoverableError
  );
}

/** A one-line message a user can read; never a stack trace, never key material. */
export function readableError(error: Error): string {
  return (error.message || error.name || 'Unknown error').split('\n')[0]!.slice(0, 500);
}
