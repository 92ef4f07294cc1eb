import type { StoredFileFacts } from '#common';
import type { ContentChecks } from './content-checks.js';
import { FileTypeTap } from './file-type.tap.js';
import { type HashPool, inlineHashSession } from './hash-pool.js';
import type { FactsOf } from './plaintext-tap.js';
import { ClamdScanTap, noScan } from './scan.tap.js';

/** Files up to this size are done within milliseconds: hashed on this thread, no progress events. */
export const SMALL_FILE = 1024 * 1024;

/** What the taps are told about the file: its size, and what the client said it is. */
export interface TappedFile {
  size: number;
  filename: string;
  contentType: string;
}

/**
 * The taps every uploaded file's plaintext goes through in the encryption pass: the digests, the type
 * check (content sniffing and the type policy) and the malware scan (clamd, or nothing with SCAN_MODE=off).
 * A new check is one more entry here and a column for its facts; neither the pass nor the handler changes.
 */
export function plaintextTaps(file: TappedFile, hashPool: HashPool, checks: ContentChecks) {
  return [
    // A small file gains nothing from a round trip to the hash threads.
    file.size <= SMALL_FILE ? inlineHashSession() : hashPool.session(),
    new FileTypeTap(checks.detector, checks.policy, file),
    checks.clamd ? new ClamdScanTap(checks.clamd, checks.metrics, file) : noScan(),
  ] as const;
}

/** What the taps learn about a file, as columns of its stored row (a fact without a column does not compile). */
export type FileFacts = Pick<StoredFileFacts, keyof FactsOf<ReturnType<typeof plaintextTaps>>>;
