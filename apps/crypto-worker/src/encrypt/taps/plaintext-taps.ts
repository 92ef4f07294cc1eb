import type { StoredFileFacts } from '#common';
import { type HashPool, inlineHashSession } from './hash-pool.js';
import type { FactsOf } from './plaintext-tap.js';

/** Files up to this size are done within milliseconds: hashed on this thread, no progress events. */
export const SMALL_FILE = 1024 * 1024;

/**
 * The taps every uploaded file's plaintext goes through in the encryption pass. A new check (a file-type
 * sniffer, a virus scanner) is one more entry here and a column for its facts; neither the pass nor the
 * handler changes.
 */
export function plaintextTaps(size: number, hashPool: HashPool) {
  // A small file gains nothing from a round trip to the hash threads.
  return [size <= SMALL_FILE ? inlineHashSession() : hashPool.session()] as const;
}

/** What the taps learn about a file, as columns of its stored row (a fact without a column does not compile). */
export type FileFacts = Pick<StoredFileFacts, keyof FactsOf<ReturnType<typeof plaintextTaps>>>;
