import { connect, type Socket } from 'node:net';
import type { ClamdAddress } from '#common';

/**
 * A client for clamd, ClamAV's daemon, speaking its documented protocol (clamd(8): `zPING`, `zVERSION`,
 * `zINSTREAM` with big-endian uint32 length-prefixed chunks ended by a zero length; answers end with NUL).
 *
 * Written here rather than taken from npm: `clamscan` (2.4) streams only through `passthrough()`, a
 * Transform that re-emits every byte it scans (the pass would have to drain a second copy of each file),
 * reports through events, writes socket errors to console.error instead of the logger, and has no outcome of
 * its own for clamd's "INSTREAM size limit exceeded" answer; `clamdjs` (1.0) scans a whole stream or
 * buffer per call with no per-chunk flow control. The pass needs to hand clamd the very chunks it encrypts and
 * learn when each is written (to reuse the buffer), and to tell "infected", "too large to scan" and "scanner
 * failed" apart to fail closed. That is the hundred lines below.
 */

export type ScanVerdict =
  | { result: 'clean' }
  | { result: 'infected'; signature: string }
  /** clamd refused the stream: more bytes than its StreamMaxLength. */
  | { result: 'too-large' }
  | { result: 'error'; message: string };

/** The scanner could not give a verdict (down, timed out, answered an error): retry, never pass the file. */
export class ScannerUnavailableError extends Error {
  constructor(reason: string) {
    super(
      `The malware scanner is unavailable (${reason}); the file is not stored unscanned and will be retried.`,
    );
    this.name = 'ScannerUnavailableError';
  }
}

/** How long a probe waits for clamd to refuse a declared chunk before taking silence as "accepted". */
const PROBE_QUIET_MS = 300;
const MAX_CHUNK_LENGTH = 0xffff_ffff;

export function parseVerdict(answer: string): ScanVerdict {
  const line = answer.replace(/\0+$/, '').trim();
  if (/^stream: OK$/.test(line)) return { result: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(line);
  if (found) return { result: 'infected', signature: found[1]! };
  if (/size limit exceeded/i.test(line)) return { result: 'too-large' };
  return { result: 'error', message: line.slice(0, 200) || 'no answer' };
}

export class ClamdClient {
  constructor(
    readonly address: ClamdAddress,
    private readonly timeoutMs: number,
  ) {}

  describe(): string {
    return this.address.kind === 'tcp'
      ? `tcp://${this.address.host}:${this.address.port}`
      : `unix:${this.address.path}`;
  }

  /** A connected socket; rejects with ScannerUnavailableError when clamd cannot be reached in time. */
  open(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket =
        this.address.kind === 'tcp'
          ? connect(this.address.port, this.address.host)
          : connect(this.address.path);
      socket.setTimeout(this.timeoutMs);
      const fail = (reason: string) => {
        socket.destroy();
        reject(new ScannerUnavailableError(`${this.describe()}: ${reason}`));
      };
      socket.once('error', (error) => fail(error.message));
      socket.once('timeout', () => fail(`no connection within ${this.timeoutMs} ms`));
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.removeAllListeners('timeout');
        resolve(socket);
      });
    });
  }

  /** Sends one command and returns clamd's answer (without the NUL). */
  async command(name: 'PING' | 'VERSION'): Promise<string> {
    const socket = await this.open();
    return new Promise((resolve, reject) => {
      let answer = '';
      socket.on('data', (data) => {
        answer += data.toString('utf8');
      });
      socket.on('timeout', () => {
        socket.destroy();
        reject(
          new ScannerUnavailableError(`${this.describe()}: no answer to ${name} within ${this.timeoutMs} ms`),
        );
      });
      socket.on('error', (error) =>
        reject(new ScannerUnavailableError(`${this.describe()}: ${error.message}`)),
      );
      socket.on('close', () => resolve(answer.replace(/\0+$/, '').trim()));
      socket.end(`z${name}\0`);
    });
  }

  /** The engine and signature database version, e.g. `ClamAV 1.4.6/27832/Tue Dec  2 09:24:02 2026`. */
  version(): Promise<string> {
    return this.command('VERSION');
  }

  /**
   * Whether clamd accepts a stream of `bytes`: clamd checks each declared chunk length against what is left
   * of its StreamMaxLength before reading the chunk, so declaring one chunk of that length and sending no
   * data is answered "INSTREAM size limit exceeded" at once when the limit is lower, and with silence
   * otherwise. A first probe with the largest chunk length proves this clamd does answer such probes (or
   * that its limit is at least 4 GiB), so the silence of the second means "accepted".
   */
  async acceptsStreamOf(bytes: number): Promise<boolean> {
    if (!(await this.refusesChunk(MAX_CHUNK_LENGTH))) return true;
    if (bytes >= MAX_CHUNK_LENGTH) return false;
    return !(await this.refusesChunk(bytes));
  }

  private async refusesChunk(length: number): Promise<boolean> {
    const socket = await this.open();
    return new Promise((resolve, reject) => {
      let answer = '';
      const quiet = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, PROBE_QUIET_MS);
      socket.on('data', (data) => {
        answer += data.toString('utf8');
        if (!answer.includes('\0')) return;
        clearTimeout(quiet);
        socket.destroy();
        const verdict = parseVerdict(answer);
        if (verdict.result === 'too-large') resolve(true);
        else
          reject(
            new ScannerUnavailableError(`${this.describe()}: unexpected answer to a probe: ${answer.trim()}`),
          );
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(quiet);
        resolve(parseVerdict(answer).result === 'too-large');
      });
      socket.write('zINSTREAM\0');
      socket.write(chunkHeader(length));
    });
  }
}

/** The 4-byte big-endian length that precedes each INSTREAM chunk (0 ends the stream). */
export function chunkHeader(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length);
  return header;
}
