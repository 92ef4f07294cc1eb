import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileEntity } from '../database/entities/file.entity.js';
import type { ConfiguredKeyProvider } from '../keys/index.js';
import type { ObjectStore } from '../storage/object-store.js';

/**
 * What a file leaves once its row is deleted: the encrypted object, the data key (where it is a secret
 * of its own) and any staging file. One place for a user's own delete (the gateway) and the delete-user
 * job (the worker), so both remove the same things.
 */
export async function removeFileData(
  parts: { store: ObjectStore; keys: ConfiguredKeyProvider; tempDir: string },
  file: Pick<FileEntity, 'id' | 'objectKey' | 'keyRef' | 'wrappedKey' | 'tempPath'>,
): Promise<void> {
  if (file.objectKey) await parts.store.delete(file.objectKey);
  if (file.keyRef) {
    await parts.keys.destroyDataKey(file.id, {
      keyRef: file.keyRef,
      wrappedKey: file.wrappedKey ?? Buffer.alloc(0),
    });
  }
  await unlink(join(parts.tempDir, file.tempPath ?? file.id)).catch(() => undefined);
}
