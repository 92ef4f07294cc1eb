import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A package loaded on the first call instead of at import: the AWS SDK clients cost a process about
 * 30 MiB of resident memory (bench/footprint.mjs), which a gateway or worker on the local store and the
 * local key file never uses. Synchronous (`require`), so the classes that need it still build their
 * clients in their constructors, and a configuration error still surfaces at start as before.
 */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(id) as T;
    return loaded;
  };
}
