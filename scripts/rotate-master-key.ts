import 'reflect-metadata';
import {
  createDataSource,
  EnvelopeKeyProvider,
  FileRepository,
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
        const current = { keyRef: file.keyRef!, wrappedKey: file.wrappedKey! };
        const next = await keys.rewrap(file.id, current);
        if (next === current || next.keyRef === current.keyRef) {
          unchanged++;
          continue;
        }
        await files.updateKey(file.id, next.keyRef, next.wrappedKey);
        rewrapped++;
      }
      after = page[page.length - 1]!.id;
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
