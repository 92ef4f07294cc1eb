import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type FileEntity,
  keyProviderFromConfig,
  recoverLength,
  STAGING_MAGIC,
  StagingReader,
  type TessConfig,
} from '#common';

/** A queued upload's staging file, looked at the way someone with the temp volume (and maybe the keys) would. */

export function stagedPath(config: TessConfig, fileId: string): string {
  return join(config.tempDir, fileId);
}

/** The raw bytes on the temp volume. */
export function rawStaged(config: TessConfig, fileId: string): Promise<Buffer> {
  return readFile(stagedPath(config, fileId));
}

/** The staged length read from the file alone (no key), as a resume would. */
export function stagedLength(config: TessConfig, fileId: string): Promise<number> {
  return recoverLength(stagedPath(config, fileId));
}

/** Decrypts a staged upload with the row's wrapped key and the configured key provider, as the worker does. */
export async function decryptStaged(
  config: TessConfig,
  row: Pick<FileEntity, 'id' | 'keyRef' | 'wrappedKey'>,
): Promise<Buffer> {
  if (!row.keyRef) throw new Error(`file ${row.id} has no key reference: it was not staged encrypted`);
  const keys = keyProviderFromConfig(config);
  try {
    const dataKey = await keys.unwrapDataKey(row.id, {
      keyRef: row.keyRef,
      wrappedKey: row.wrappedKey ?? Buffer.alloc(0),
    });
    const reader = await StagingReader.open(stagedPath(config, row.id), { dataKey, fileId: row.id });
    try {
      const out: Buffer[] = [];
      const into = Buffer.alloc(reader.recordSize);
      for (let plain = await reader.readInto(into); plain; plain = await reader.readInto(into)) {
        out.push(Buffer.from(plain));
      }
      return Buffer.concat(out);
    } finally {
      await reader.close();
      dataKey.fill(0);
    }
  } finally {
    await keys.close();
  }
}

/** True when `raw` is a staging file (magic) and none of `marker`'s occurrences survive in it. */
export function isOpaque(raw: Buffer, marker: Buffer): boolean {
  return raw.subarray(0, 4).equals(STAGING_MAGIC) && raw.indexOf(marker) === -1;
}
