import { UnrecoverableError } from 'bullmq';
import type { RefusedStatus } from '#common';

/**
 * Sees every plaintext chunk of an encryption pass, beside the cipher, and tells what it learnt at the end:
 * its facts (digests today; a sniffed file type or a scan verdict next), which become columns of the
 * stored row. The pass hands each chunk to every tap in order and reuses the chunk's buffer only once every
 * tap has released it, so a tap may read it on another thread or write it to a socket meanwhile.
 */
export interface PlaintextTap<F extends object> {
  /**
   * The next chunk. Calls `release` exactly once, when it no longer reads the chunk's bytes (a synchronous
   * tap before it returns). Throws to fail the pass.
   */
  update(chunk: Buffer, release: () => void): void;
  /** After the last chunk: the tap's facts, or a rejection that fails the pass. Called at most once. */
  finish(): Promise<F>;
  /** Drops the tap (the pass failed); pending releases still run. Safe to call more than once. */
  abort(): void;
}

/** The facts a tap contributes. */
export type FactsOfTap<T> = T extends PlaintextTap<infer F> ? F : never;

type Intersection<U> = (U extends unknown ? (value: U) => void : never) extends (value: infer I) => void
  ? I
  : never;

/** The facts of a list of taps, merged. */
export type FactsOf<T extends readonly PlaintextTap<object>[]> = Intersection<FactsOfTap<T[number]>>;

/**
 * A tap refused the file (a scanner found malware, a sniffer a forbidden type): the pass fails for good,
 * without retries, and nothing is stored.
 */
export class PlaintextRejectedError extends UnrecoverableError {
  constructor(
    message: string,
    /** The file's final status: `rejected` (a policy refused it) or `infected` (malware was found). */
    readonly status: RefusedStatus,
    /** What the audit event records: the rule, the signature and scanner, the detected type. */
    readonly details: { rule: string; detectedType?: string; signature?: string; scanner?: string },
  ) {
    super(message);
    this.name = 'PlaintextRejectedError';
  }
}
