import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ciphertextLength,
  decryptObject,
  encryptObject,
  isStagingIntegrityError,
  StagingWriter,
} from '#common';
import { encryptPass } from './encrypt-pass.js';
import { openPlaintextFile, type PlaintextSource, StagedPlaintext } from './plaintext-source.js';
import { HashPool, type HashSession, inlineHashSession } from './taps/hash-pool.js';
import { PlaintextRejectedError, type PlaintextTap } from './taps/plaintext-tap.js';

const CHUNK = 4096;
const SEGMENT = 1024;

let dir: string;
let pool: HashPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tess-pass-'));
  pool = new HashPool(2);
});

afterAll(async () => {
  await pool.onApplicationShutdown();
  await rm(dir, { recursive: true, force: true });
});

async function fileOf(bytes: Buffer): Promise<() => Promise<PlaintextSource>> {
  const path = join(dir, randomUUID());
  await writeFile(path, bytes);
  return () => openPlaintextFile(path);
}

function keyOptions() {
  return {
    dataKey: randomBytes(32),
    fileId: randomUUID(),
    keyRef: 'local:test',
    wrappedKey: randomBytes(40),
    segmentSize: SEGMENT,
  };
}

async function drain(pass: ReturnType<typeof encryptPass>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of pass.body) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

describe('encryptPass', () => {
  const sizes = [0, 1, SEGMENT - 16, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 40 * CHUNK + 5];
  for (const [name, hashing] of [
    ['hash threads', () => pool.session()],
    ['inline hashes', () => inlineHashSession()],
  ] as const) {
    it.each(sizes)(
      `with ${name}: %i bytes give the digests of the file and an object that decrypts to it`,
      async (size) => {
        const plaintext = randomBytes(size);
        const encrypt = keyOptions();
        const pass = encryptPass({
          source: await fileOf(plaintext),
          encrypt,
          taps: [hashing()],
          chunkSize: CHUNK,
          buffers: 2,
        });
        const object = await drain(pass);
        const result = await pass.result;

        expect(result).toEqual({
          sha1: createHash('sha1').update(plaintext).digest('hex'),
          sha256: createHash('sha256').update(plaintext).digest('hex'),
          plaintextBytes: size,
        });
        expect(object.length).toBe(
          ciphertextLength(size, { headerLength: pass.encryptor.header.length, segmentSize: SEGMENT }),
        );
        expect(
          (await decryptObject(object, encrypt.dataKey, { fileId: encrypt.fileId })).equals(plaintext),
        ).toBe(true);
      },
    );
  }

  it('produces exactly what the EncryptStream produces for the same key and nonce prefix', async () => {
    const plaintext = randomBytes(10 * CHUNK + 333);
    const encrypt = { ...keyOptions(), noncePrefix: randomBytes(7) };
    const pass = encryptPass({
      source: await fileOf(plaintext),
      encrypt,
      taps: [pool.session()],
      chunkSize: CHUNK,
    });
    expect((await drain(pass)).equals(await encryptObject(plaintext, encrypt))).toBe(true);
  });

  it('keeps concurrent sessions on the same threads apart', async () => {
    const inputs = await Promise.all([1, 2, 3, 4].map(() => Promise.resolve(randomBytes(25 * CHUNK + 9))));
    const results = await Promise.all(
      inputs.map(async (plaintext) => {
        const pass = encryptPass({
          source: await fileOf(plaintext),
          encrypt: keyOptions(),
          taps: [pool.session()],
          chunkSize: CHUNK,
          buffers: 3,
        });
        await drain(pass);
        return (await pass.result).sha256;
      }),
    );
    expect(results).toEqual(inputs.map((plaintext) => createHash('sha256').update(plaintext).digest('hex')));
  });

  it('reports every plaintext byte through onPlaintext', async () => {
    const plaintext = randomBytes(7 * CHUNK + 1);
    let seen = 0;
    const pass = encryptPass({
      source: await fileOf(plaintext),
      encrypt: keyOptions(),
      taps: [pool.session()],
      chunkSize: CHUNK,
      onPlaintext: (bytes) => {
        seen += bytes;
      },
    });
    await drain(pass);
    expect(seen).toBe(plaintext.length);
  });

  it('fails the body and the result when the file cannot be read', async () => {
    const session = pool.session();
    const pass = encryptPass({
      source: () => openPlaintextFile(join(dir, 'missing')),
      encrypt: keyOptions(),
      taps: [session],
    });
    await expect(drain(pass)).rejects.toThrow(/ENOENT/);
    await expect(pass.result).rejects.toThrow(/ENOENT/);
  });

  it('fails with the source error, never an unhandled rejection, when a read ahead fails while the consumer is slow', async () => {
    let reads = 0;
    const failing: PlaintextSource = {
      async read(into) {
        reads += 1;
        if (reads === 3) throw new Error('record 2 does not authenticate');
        into.fill(7);
        return into.length;
      },
      close: async () => undefined,
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const pass = encryptPass({
        source: async () => failing,
        encrypt: keyOptions(),
        taps: [inlineHashSession()],
        chunkSize: CHUNK,
      });
      const consumed = (async () => {
        // A store that takes its time with each piece, so the read ahead settles while the pass waits at a yield.
        for await (const _piece of pass.body) await new Promise((resolve) => setTimeout(resolve, 20));
      })();
      await expect(consumed).rejects.toThrow(/does not authenticate/);
      await expect(pass.result).rejects.toThrow(/does not authenticate/);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('stops reading, frees the hash session and rejects the result when the consumer gives up', async () => {
    const plaintext = randomBytes(50 * CHUNK);
    let aborted = 0;
    const inner = pool.session();
    const session: HashSession = {
      update: (chunk, release) => inner.update(chunk, release),
      finish: () => inner.finish(),
      abort: () => {
        aborted += 1;
        inner.abort();
      },
    };
    let seen = 0;
    const pass = encryptPass({
      source: await fileOf(plaintext),
      encrypt: keyOptions(),
      taps: [session],
      chunkSize: CHUNK,
      buffers: 2,
      onPlaintext: (bytes) => {
        seen += bytes;
      },
    });
    for await (const _piece of pass.body) break;
    await expect(pass.result).rejects.toThrow(/did not finish/);
    expect(aborted).toBe(1);
    expect(seen).toBeLessThan(plaintext.length);
  });
});

describe('encryptPass over a staged upload', () => {
  const RECORD = 1000;

  async function staged(plaintext: Buffer, fileId: string, dataKey: Buffer): Promise<string> {
    const path = join(dir, randomUUID());
    await pipeline(
      Readable.from([plaintext]),
      StagingWriter.create({ path, fileId, dataKey, recordSize: RECORD }),
    );
    return path;
  }

  it.each([0, 1, RECORD, 3 * RECORD + 7, 9 * CHUNK + 3])(
    '%i bytes: the taps and the object see the plaintext, decrypted record by record',
    async (size) => {
      const plaintext = randomBytes(size);
      const encrypt = keyOptions();
      const path = await staged(plaintext, encrypt.fileId, encrypt.dataKey);
      const source = await StagedPlaintext.open(path, { dataKey: encrypt.dataKey, fileId: encrypt.fileId });
      expect(source.length).toBe(size);
      const pass = encryptPass({
        source: async () => source,
        encrypt,
        taps: [pool.session()],
        chunkSize: Math.max(source.minimumBuffer, CHUNK),
      });
      const object = await drain(pass);
      const facts = await pass.result;
      expect(facts.plaintextBytes).toBe(size);
      expect(facts.sha256).toBe(createHash('sha256').update(plaintext).digest('hex'));
      expect(
        (await decryptObject(object, encrypt.dataKey, { fileId: encrypt.fileId })).equals(plaintext),
      ).toBe(true);
    },
  );

  it('ends with staging-integrity when a record in the middle was flipped, and no tap sees its bytes', async () => {
    const plaintext = randomBytes(8 * RECORD);
    const encrypt = keyOptions();
    const path = await staged(plaintext, encrypt.fileId, encrypt.dataKey);
    const bytes = await readFile(path);
    const at = 65 + 4 * (5 + RECORD + 16) + 100;
    bytes[at] = bytes[at]! ^ 1;
    await writeFile(path, bytes);
    let tapped = 0;
    const source = await StagedPlaintext.open(path, { dataKey: encrypt.dataKey, fileId: encrypt.fileId });
    const pass = encryptPass({
      source: async () => source,
      encrypt,
      taps: [pool.session()],
      chunkSize: RECORD,
      onPlaintext: (n) => {
        tapped += n;
      },
    });
    await expect(drain(pass)).rejects.toThrow(/staging-integrity/);
    await expect(pass.result).rejects.toSatisfy((error) => isStagingIntegrityError(error, 'record-tag'));
    expect(tapped).toBe(4 * RECORD);
  });

  it('refuses a read buffer smaller than a record instead of reading a short file', async () => {
    const encrypt = keyOptions();
    const path = await staged(randomBytes(3 * RECORD), encrypt.fileId, encrypt.dataKey);
    const source = await StagedPlaintext.open(path, { dataKey: encrypt.dataKey, fileId: encrypt.fileId });
    try {
      await expect(source.read(Buffer.alloc(RECORD - 1))).rejects.toThrow(RangeError);
    } finally {
      await source.close();
    }
  });
});

describe('HashPool', () => {
  it('refuses chunks that do not live in SharedArrayBuffers', () => {
    const session = pool.session();
    expect(() => session.update(Buffer.alloc(16), () => undefined)).toThrow(/SharedArrayBuffer/);
    session.abort();
  });

  it('fails a session whose thread dies instead of hanging, and starts a new thread for the next one', async () => {
    const own = new HashPool(1);
    try {
      const session = own.session();
      const chunk = Buffer.from(new SharedArrayBuffer(64));
      let released = 0;
      session.update(chunk, () => {
        released += 1;
      });
      // Reach into the pool to kill its only thread, as a crash would.
      const threads = (own as unknown as { threads: Array<{ worker: { terminate(): Promise<number> } }> })
        .threads;
      await threads[0]!.worker.terminate();
      await expect(session.finish()).rejects.toThrow(/hash thread/);
      expect(released).toBe(1);

      const next = own.session();
      next.update(chunk, () => undefined);
      expect((await next.finish()).sha1).toBe(createHash('sha1').update(chunk).digest('hex'));
    } finally {
      await own.onApplicationShutdown();
    }
  });

  it('computes both digests right when one thread carries both algorithms', async () => {
    const own = new HashPool(1);
    try {
      const plaintext = randomBytes(9 * CHUNK + 3);
      const pass = encryptPass({
        source: await fileOf(plaintext),
        encrypt: keyOptions(),
        taps: [own.session()],
        chunkSize: CHUNK,
      });
      await drain(pass);
      const { sha1, sha256 } = await pass.result;
      expect(sha1).toBe(createHash('sha1').update(plaintext).digest('hex'));
      expect(sha256).toBe(createHash('sha256').update(plaintext).digest('hex'));
    } finally {
      await own.onApplicationShutdown();
    }
  });

  it('refuses new sessions once shut down', async () => {
    const own = new HashPool(1);
    await own.onApplicationShutdown();
    expect(() => own.session()).toThrow(/shut down/);
    await expect(own.digest('sha256', Buffer.from(new SharedArrayBuffer(8)))).rejects.toThrow(/shut down/);
  });

  it('digests whole buffers on its threads, each in turn, meanwhile sessions go on', async () => {
    const session = pool.session();
    const shared = Buffer.from(new SharedArrayBuffer(3 * CHUNK));
    randomBytes(shared.length).copy(shared);
    session.update(shared.subarray(0, CHUNK), () => undefined);
    // Views at an offset, as the S3 store's part buffers are cut; more than one per thread.
    const views = [shared.subarray(5, 2 * CHUNK), shared.subarray(CHUNK), shared, shared.subarray(7, 8)];
    const digests = await Promise.all(views.map((view) => pool.digest('sha256', view)));
    expect(digests).toEqual(views.map((view) => createHash('sha256').update(view).digest('hex')));
    expect((await session.finish()).sha1).toBe(
      createHash('sha1').update(shared.subarray(0, CHUNK)).digest('hex'),
    );
    await expect(pool.digest('sha256', Buffer.alloc(8))).rejects.toThrow(/SharedArrayBuffer/);
  });

  it('rejects a digest whose thread dies instead of hanging', async () => {
    const own = new HashPool(1);
    try {
      const threads = (own as unknown as { threads: Array<{ worker: { terminate(): Promise<number> } }> })
        .threads;
      const pending = own.digest('sha256', Buffer.from(new SharedArrayBuffer(1 << 20)));
      await threads[0]!.worker.terminate();
      await expect(pending).rejects.toThrow(/hash thread/);
    } finally {
      await own.onApplicationShutdown();
    }
  });
});

describe('plaintext taps', () => {
  /** Counts what it sees and releases each chunk later, as a tap writing to a socket would. */
  function countingTap() {
    let bytes = 0;
    let aborted = 0;
    const tap: PlaintextTap<{ countedBytes: number }> = {
      update(chunk, release) {
        bytes += chunk.length;
        setImmediate(release);
      },
      finish: async () => ({ countedBytes: bytes }),
      abort: () => {
        aborted += 1;
      },
    };
    return { tap, aborted: () => aborted };
  }

  it('feeds every chunk to every tap and merges their facts into the result', async () => {
    const plaintext = randomBytes(6 * CHUNK + 7);
    const counting = countingTap();
    const pass = encryptPass({
      source: await fileOf(plaintext),
      encrypt: keyOptions(),
      taps: [pool.session(), counting.tap],
      chunkSize: CHUNK,
      buffers: 2,
    });
    await drain(pass);
    expect(await pass.result).toEqual({
      sha1: createHash('sha1').update(plaintext).digest('hex'),
      sha256: createHash('sha256').update(plaintext).digest('hex'),
      countedBytes: plaintext.length,
      plaintextBytes: plaintext.length,
    });
  });

  it('fails the pass with the typed error of a tap that rejects the file, and aborts the other taps', async () => {
    const counting = countingTap();
    const rejecting: PlaintextTap<object> = {
      update: (_chunk, release) => release(),
      finish: async () => {
        throw new PlaintextRejectedError('EICAR test signature found', 'infected', { rule: 'malware' });
      },
      abort: () => undefined,
    };
    const pass = encryptPass({
      source: await fileOf(randomBytes(3 * CHUNK)),
      encrypt: keyOptions(),
      taps: [counting.tap, rejecting],
      chunkSize: CHUNK,
    });
    await expect(drain(pass)).rejects.toBeInstanceOf(PlaintextRejectedError);
    await expect(pass.result).rejects.toBeInstanceOf(PlaintextRejectedError);
    expect(counting.aborted()).toBe(1);
  });
});
