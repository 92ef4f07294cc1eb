import { open } from 'node:fs/promises';
import { type StagingFollower, StagingReader, type StagingReaderOptions } from '#common';

/**
 * Where an encrypt pass reads the plaintext from. `read` fills `into` from its start and returns how many
 * bytes it put there, 0 once the source is exhausted; every byte it returns is authentic.
 */
export interface PlaintextSource {
  read(into: Buffer): Promise<number>;
  close(): Promise<void>;
}

/**
 * A staged upload (libs/common/src/staging, docs/format.md "Staging format"): each read decrypts as many
 * whole records as fit into the buffer; a record is released only after its tag verified, so a flipped,
 * reordered, spliced or truncated record ends the pass with a StagingIntegrityError before its bytes reach a
 * tap or the object. The header and seal are checked when the reader opens.
 */
export class StagedPlaintext implements PlaintextSource {
  private constructor(private readonly reader: StagingReader) {}

  static async open(path: string, options: StagingReaderOptions): Promise<StagedPlaintext> {
    return new StagedPlaintext(await StagingReader.open(path, options));
  }

  /** Plaintext bytes of the staged upload, as its seal says. */
  get length(): number {
    return this.reader.length;
  }

  /** The smallest read buffer that always holds the next record. */
  get minimumBuffer(): number {
    return Math.max(1, Math.min(this.reader.recordSize, this.reader.length));
  }

  async read(into: Buffer): Promise<number> {
    const fits = () => into.length - filled >= Math.min(this.reader.recordSize, this.reader.remaining);
    let filled = 0;
    if (this.reader.remaining > 0 && !fits()) {
      throw new RangeError(
        `A ${into.length}-byte buffer cannot hold a ${this.reader.recordSize}-byte record`,
      );
    }
    while (this.reader.remaining > 0 && fits()) {
      const plaintext = await this.reader.readInto(into.subarray(filled));
      if (!plaintext) break;
      filled += plaintext.length;
    }
    return filled;
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}

/**
 * A plaintext temp file, as gateways before staging encryption wrote them: only for rows queued without a
 * key reference (an upload accepted by an older gateway during a rolling upgrade). A row with a key reference
 * is always read as staging, so replacing a staged file with plaintext is refused, not accepted.
 */
export async function openPlaintextFile(path: string): Promise<PlaintextSource> {
  const handle = await open(path, 'r');
  return {
    read: async (into) => (await handle.read(into, 0, into.length, null)).bytesRead,
    close: () => handle.close(),
  };
}

/**
 * A staged upload read while it still arrives (a follower, docs/security.md item 40): whole records as
 * they are complete in the file, each authenticated before it is released (StagingFollower). A read returns
 * what is there rather than waiting to fill its buffer, and waits only when nothing is. After the seal,
 * `accepted` must resolve (the upload was accepted: the gateway is done with the file for good) and the
 * follower must confirm that the file still holds exactly what was released before the source ends; a
 * failure of either ends the pass, so the object is never completed.
 */
export class FollowedPlaintext implements PlaintextSource {
  private ended = false;

  constructor(
    private readonly follower: StagingFollower,
    private readonly accepted: () => Promise<void>,
  ) {}

  get minimumBuffer(): number {
    return this.follower.recordSize;
  }

  async read(into: Buffer): Promise<number> {
    if (this.ended) return 0;
    const { recordSize } = this.follower;
    if (into.length < recordSize) {
      throw new RangeError(`A ${into.length}-byte buffer cannot hold a ${recordSize}-byte record`);
    }
    let filled = 0;
    while (into.length - filled >= recordSize) {
      if (filled > 0 && !(await this.follower.ready())) break;
      const plaintext = await this.follower.readInto(into.subarray(filled));
      if (plaintext) {
        filled += plaintext.length;
        continue;
      }
      if (filled > 0) break;
      await this.accepted();
      await this.follower.confirm();
      this.ended = true;
      break;
    }
    return filled;
  }

  close(): Promise<void> {
    return this.follower.close();
  }
}
