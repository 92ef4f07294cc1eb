import 'reflect-metadata';
import {
  createDataSource,
  EnvelopeKeyProvider,
  FileRepository,
  FileVersionRepository,
  keyProviderFromConfig,
  loadConfig,
  type TessConfig,
} from '#common';

export interface RotationReport {
  keyRef: string;
  rewrapped: number;
  unchanged: number;
}

/**
 * Creates a new master key version and re-wraps every stored data key under it, without touching a
 * single object: the rows get the new wrapped key, while object headers keep the old one, which stays
 * readable as long as the old master key version exists (never delete it while objects reference it).
 * Idempotent: a key already under the current version is left as it is, so an interrupted run can
 * simply be repeated.
 */
export async function rotateMasterKey(
  config: TessConfig,
  options: { rotate?: boolean } = {},
): Promise<RotationReport> {
  const keys = keyProviderFromConfig(config);
  if (!(keys instanceof EnvelopeKeyProvider)) {
    throw new Error(
      'KEY_MODE=per-file-secret has no master key to rotate (each file key is its own secret).',
    );
  }
  const dataSource = createDataSource(config);
  await dataSource.initialize();
  try {
    const files = new FileRepository(dataSource);
    const keyRef =
      options.rotate === false ? await keys.currentKeyRef() : (await keys.rotateMasterKey()).keyRef;
    let rewrapped = 0;
    let unchanged = 0;
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const page = await files.listWrapped(after, 200);
      if (!page.length) break;
      for (const file of page) {
        // A later version's key is bound to the id of the upload that brought it (docs/format.md).
        const objectId = file.objectId ?? file.id;
        const current = { keyRef: file.keyRef!, wrappedKey: file.wrappedKey! };
        const next = await keys.rewrap(objectId, current);
        if (next === current || next.keyRef === current.keyRef) {
          unchanged++;
          continue;
        }
        await files.updateKey(objectId, next.keyRef, next.wrappedKey);
        rewrapped++;
      }
      after = page[page.length - 1]!.id;
    }
    // Older versions' objects (not any file's current one, nor bound to their file's own id).
    const versions = new FileVersionRepository(dataSource);
    after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const page = await versions.listWrappedObjects(after, 200);
      if (!page.length) break;
      for (const object of page) {
        const current = { keyRef: object.keyRef, wrappedKey: object.wrappedKey };
        const next = await keys.rewrap(object.objectId, current);
        if (next === current || next.keyRef === current.keyRef) continue;
        await files.updateKey(object.objectId, next.keyRef, next.wrappedKey);
        rewrapped++;
      }
      after = page[page.length - 1]!.objectId;
    }
    return { keyRef, rewrapped, unchanged };
  } finally {
    await dataSource.destroy();
    await keys.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  rotateMasterKey(loadConfig(), { rotate: !process.argv.includes('--rewrap-only') }).then(
    (report) => {
      console.log(
        `Master key is now ${report.keyRef}: re-wrapped ${report.rewrapped} data key(s), ${report.unchanged} already current.`,
      );
    },
    (error: unknown) => {
      console.error(`Rotation failed: ${(error as Error).message}. Re-run it; finished files are skipped.`);
      process.exit(1);
    },
  );
}
