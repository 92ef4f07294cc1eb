import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditRepository } from '../database/repositories/audit.repository.js';
import {
  type FileVersion,
  FileVersionRepository,
  type VersionRefusal,
} from '../database/repositories/file-version.repository.js';
import { KEY_PROVIDER, OBJECT_STORE } from '../infra/storage.module.js';
import type { ConfiguredKeyProvider } from '../keys/index.js';
import type { ObjectStore } from '../storage/object-store.js';

/** Who removes a version: its owner (API, dashboard) or the retention job. */
export type VersionRemoval =
  | { reason: 'user'; userId: string; ip?: string }
  | { reason: 'retention'; rule: 'keep' | 'max-age' };

/**
 * Removes one non-current version of a file: its row first (in a transaction that locks the file), then,
 * only when no other version still uses it (a restored copy shares its original's object and wrapped key),
 * its object and data key. A crash in between leaves an unreferenced object, never a row pointing at
 * nothing. Audited as `file.version_deleted`. Shared by the gateway (DELETE .../versions/:n) and the
 * worker's retention job.
 */
@Injectable()
export class VersionRemover {
  private readonly logger = new Logger(VersionRemover.name);

  constructor(
    private readonly versions: FileVersionRepository,
    private readonly audit: AuditRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
  ) {}

  async remove(
    fileId: string,
    version: number,
    by: VersionRemoval,
  ): Promise<{ removed: FileVersion; objectDeleted: boolean } | VersionRefusal> {
    const outcome = await this.versions.remove(fileId, version);
    if (typeof outcome === 'string') return outcome;
    const { removed, orphaned, filename } = outcome;
    if (orphaned) await this.release(removed);
    await this.audit.record({
      action: 'file.version_deleted',
      userId: removed.ownerId,
      fileId,
      ip: by.reason === 'user' ? by.ip : undefined,
      details: {
        filename,
        version,
        size: removed.size,
        sha256: removed.sha256,
        reason: by.reason === 'user' ? 'user' : `retention:${by.rule}`,
        objectDeleted: orphaned,
      },
    });
    return { removed, objectDeleted: orphaned };
  }

  /** Deletes a version's object and its data key (per-file-secret mode: the secret). */
  async release(
    version: Pick<FileVersion, 'objectId' | 'objectKey' | 'keyRef' | 'wrappedKey'>,
  ): Promise<void> {
    await this.store.delete(version.objectKey);
    await this.keys
      .destroyDataKey(version.objectId, {
        keyRef: version.keyRef,
        wrappedKey: version.wrappedKey ?? Buffer.alloc(0),
      })
      .catch((error: Error) => {
        this.logger.warn(`Could not remove the data key of object ${version.objectId}: ${error.message}`);
      });
  }
}
