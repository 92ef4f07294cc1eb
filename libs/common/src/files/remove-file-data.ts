import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileEntity } from '../database/entities/file.entity.js';
import type { ConfiguredKeyProvider } from '../keys/index.js';
import type { ObjectStore } from '../storage/object-store.js';

type StoredObject = Pick<FileEntity, 'objectKey' | 'keyRef' | 'wrappedKey'>;

/** A file's other parts, read before its row is deleted (the rows go with it). */
export interface FileRelations {
  /** One entry per distinct object of its versions (FileVersionRepository.objectsOf). */
  versions: Array<StoredObject & { objectId: string }>;
  /** Upload rows of new versions not stored yet (FileRepository.uploadsOfVersions). */
  uploads: Array<Pick<FileEntity, 'id' | 'keyRef' | 'wrappedKey' | 'tempPath' | 'objectKey'>>;
}

/**
 * What a file leaves once its row is deleted: every version's encrypted object and data key (where it is a
 * secret of its own; a restored version shares its original's, removed once), the data keys of new versions
 * still on their way, and any staging file. One place for a user's own delete (the gateway) and the
 * delete-user job (the worker), so both remove the same things.
 */
export async function removeFileData(
  parts: { store: ObjectStore; keys: ConfiguredKeyProvider; tempDir: string },
  file: Pick<FileEntity, 'id' | 'objectKey' | 'keyRef' | 'wrappedKey' | 'tempPath'> &
    Partial<Pick<FileEntity, 'objectId'>>,
  related: FileRelations = { versions: [], uploads: [] },
): Promise<void> {
  const objects = new Map<string, StoredObject>();
  for (const version of related.versions) objects.set(version.objectId, version);
  // The current object, and the key of a first upload not stored yet.
  if (file.keyRef) objects.set(file.objectId ?? file.id, file);
  for (const upload of related.uploads) {
    if (upload.keyRef) objects.set(upload.id, upload);
    await unlink(join(parts.tempDir, upload.tempPath ?? upload.id)).catch(() => undefined);
  }
  for (const [objectId, object] of objects) {
    if (object.objectKey) await parts.store.delete(object.objectKey);
    if (object.keyRef) {
      await parts.keys.destroyDataKey(objectId, {
        keyRef: object.keyRef,
        wrappedKey: object.wrappedKey ?? Buffer.alloc(0),
      });
    }
  }
  await unlink(join(parts.tempDir, file.tempPath ?? file.id)).catch(() => undefined);
}
