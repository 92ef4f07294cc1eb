import type { Socket } from 'node:net';
import type { TessMetrics } from '#common';
import {
  type ClamdClient,
  chunkHeader,
  parseVerdict,
  ScannerUnavailableError,
  type ScanVerdict,
} from '../../scan/clamd-client.js';
import { PlaintextRejectedError, type PlaintextTap } from './plaintext-tap.js';

/** The facts of the scan: the scanner that passed the file (null when SCAN_MODE=off). */
export interface ScanFacts {
  scannedWith: string | null;
}

/** SCAN_MODE=off: nothing is scanned and the row says so. */
export function noScan(): PlaintextTap<ScanFacts> {
  return {
    update: (_chunk, release) => release(),
    finish: async () => ({ scannedWith: null }),
    abort() {},
  };
}

/**
 * Streams the plaintext to clamd (INSTREAM) while the pass hashes and encrypts the same chunks: each chunk
 * is written to the socket and released once the socket has taken it, so clamd's pace holds the pass back
 * rather than buffering the file. The verdict arrives after the last chunk, before the object is
 * committed: `infected` and "too large to scan" refuse the file for good (nothing stored); anything
 * else without a clean verdict (clamd down, timed out, an error answer) is a ScannerUnavailableError, so the
 * job retries and the file is never stored unscanned (fails closed).
 */
export class ClamdScanTap implements PlaintextTap<ScanFacts> {
  private socket?: Socket;
  private readonly opened: Promise<Socket>;
  private readonly version: Promise<string | null>;
  private answer = '';
  private readonly answered: Promise<string>;
  private failure: Error | null = null;
  /** Releases of chunks written but not yet flushed; all run if the socket dies first. */
  private readonly unreleased = new Set<() => void>();
  private queue: Array<{ chunk: Buffer; release: () => void }> = [];

  constructor(
    private readonly client: ClamdClient,
    private readonly metrics: TessMetrics,
    private readonly file: { filename: string; size: number },
  ) {
    this.version = client.version().catch(() => null);
    let settle!: (answer: string) => void;
    this.answered = new Promise((resolve) => (settle = resolve));
    this.opened = client.open();
    this.opened.then(
      (socket) => {
        this.socket = socket;
        socket.on('data', (data) => {
          this.answer += data.toString('utf8');
          if (this.answer.includes('\0')) settle(this.answer);
        });
        socket.on('timeout', () =>
          this.fail(new ScannerUnavailableError(`no answer within the scan timeout`), settle),
        );
        socket.on('error', (error) => this.fail(new ScannerUnavailableError(error.message), settle));
        socket.on('close', () => {
          this.releaseAll();
          settle(this.answer);
        });
        socket.write('zINSTREAM\0');
        for (const { chunk, release } of this.queue.splice(0)) this.write(chunk, release);
      },
      (error: Error) => {
        this.failure = error;
        for (const { release } of this.queue.splice(0)) release();
        settle('');
      },
    );
    this.opened.catch(() => undefined);
  }

  update(chunk: Buffer, release: () => void): void {
    if (this.failure || this.answer) {
      // No verdict can come from this connection any more (or clamd already answered): keep the pass moving.
      release();
      return;
    }
    if (!this.socket) {
      this.queue.push({ chunk, release });
      return;
    }
    this.write(chunk, release);
  }

  private write(chunk: Buffer, release: () => void): void {
    const socket = this.socket!;
    if (socket.destroyed || this.answer) {
      release();
      return;
    }
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      this.unreleased.delete(once);
      release();
    };
    this.unreleased.add(once);
    socket.write(chunkHeader(chunk.length));
    socket.write(chunk, once);
  }

  async finish(): Promise<ScanFacts> {
    await this.opened.catch(() => undefined);
    if (this.socket && !this.socket.destroyed && !this.answer) this.socket.end(chunkHeader(0));
    const answer = await this.answered;
    const verdict: ScanVerdict = answer ? parseVerdict(answer) : await this.verdictOfLostConnection();
    this.metrics.scanResults.inc({ result: verdict.result });
    const scanner = (await this.version) ?? `clamd at ${this.client.describe()}`;
    switch (verdict.result) {
      case 'clean':
        return { scannedWith: scanner };
      case 'infected':
        throw new PlaintextRejectedError(
          `"${this.file.filename}" is infected (${verdict.signature}); nothing was stored.`,
          'infected',
          { rule: 'malware', signature: verdict.signature, scanner },
        );
      case 'too-large':
        throw new PlaintextRejectedError(
          `"${this.file.filename}" is larger than the malware scanner accepts (clamd StreamMaxLength); it was not stored unscanned.`,
          'rejected',
          { rule: 'scan-limit', scanner },
        );
      case 'error':
        throw (
          this.failure ??
          new ScannerUnavailableError(answer ? `clamd answered: ${verdict.message}` : verdict.message)
        );
    }
  }

  /**
   * No answer: clamd closed the connection while chunks were still being written. It does that after
   * answering "INSTREAM size limit exceeded", and the answer is lost when the write fails first (EPIPE), so
   * ask it directly whether it takes a stream of this file's size; anything else is no verdict.
   */
  private async verdictOfLostConnection(): Promise<ScanVerdict> {
    const message = this.failure?.message ?? 'clamd closed the connection without a verdict';
    // Never connected: clamd is down, there is nobody to ask.
    if (!this.socket) return { result: 'error', message };
    const refused = await this.client.acceptsStreamOf(this.file.size).then(
      (accepted) => !accepted,
      () => false,
    );
    return refused ? { result: 'too-large' } : { result: 'error', message };
  }

  abort(): void {
    this.socket?.destroy();
    for (const { release } of this.queue.splice(0)) release();
    this.releaseAll();
  }

  private fail(error: Error, settle: (answer: string) => void): void {
    this.failure ??= error;
    this.socket?.destroy();
    this.releaseAll();
    settle(this.answer);
  }

  private releaseAll(): void {
    for (const release of [...this.unreleased]) release();
  }
}
