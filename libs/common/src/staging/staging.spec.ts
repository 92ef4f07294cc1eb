import { createCipheriv, createHash, createHmac, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverLength, StagingReader, type StagingResumePoint, scanStaging } from './staging.reader.js';
import { StagingWriter } from './staging.writer.js';
import { StagingIntegrityError, type StagingIntegrityReason } from './staging-integrity.error.js';

/** Fixed inputs of the vectors (the worked example in docs/format.md). */
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const FILE_ID = '00112233-4455-6677-8899-aabbccddeeff';
const NONCE_PREFIX = Buffer.from('a0a1a2a3a4a5a6', 'hex');
const RECORD_SIZE = 16;
/** 37 bytes 00 01 .. 24: records of 16, 16 and 5 bytes, then the seal. */
const PLAINTEXT = Buffer.from(Array.from({ length: 37 }, (_, i) => i));
const HEADER_HEX =
  '5453544701010000001000112233445566778899aabbccddeeffa0a1a2a3a4a5a6' +
  '1580b8faddaadeacd7153176fbdb90390043516486fa30b4980e2502fb87b13d';
const RECORDS_HEX =
  '0000001000355aa619c4a2ea69256755acde8eea8541843c46fddd633baa42e8b6dd484aa2' +
  '0000001000300fba15752075d3206943dd352f842563ec94e41ef13f89d66838a30967d5f2' +
  '0000000500bc3ba4dc1e005ab7af74d3d7da162d55e103897cfa' +
  '000000080133e3f2cecb8703f3fe0db1d3f08f0d09e320c0e2e33b2816';
const VECTOR_FILE = Buffer.from(HEADER_HEX + RECORDS_HEX, 'hex');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tess-staging-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pathFor(name = randomUUID()): string {
  return join(dir, name);
}

async function stage(
  plaintext: Buffer,
  options: { key?: Buffer; fileId?: string; recordSize?: number; seal?: boolean; chunk?: number } = {},
): Promise<{ path: string; bytes: Buffer; key: Buffer; fileId: string }> {
  const key = options.key ?? randomBytes(32);
  const fileId = options.fileId ?? randomUUID();
  const path = pathFor();
  const chunk = options.chunk ?? 7;
  const pieces = Array.from({ length: Math.ceil(plaintext.length / chunk) }, (_, i) =>
    plaintext.subarray(i * chunk, (i + 1) * chunk),
  );
  await pipeline(
    Readable.from(pieces),
    StagingWriter.create({
      path,
      fileId,
      dataKey: key,
      recordSize: options.recordSize ?? RECORD_SIZE,
      sealOnEnd: options.seal ?? true,
    }),
  );
  return { path, bytes: await readFile(path), key, fileId };
}

async function readAll(path: string, dataKey: Buffer, fileId: string): Promise<Buffer> {
  const reader = await StagingReader.open(path, { dataKey, fileId });
  const out: Buffer[] = [];
  try {
    const into = Buffer.alloc(reader.recordSize);
    for (let chunk = await reader.readInto(into); chunk; chunk = await reader.readInto(into)) {
      out.push(Buffer.from(chunk));
    }
  } finally {
    await reader.close();
  }
  return Buffer.concat(out);
}

async function expectRejected(path: string, key: Buffer, fileId: string, reason: StagingIntegrityReason) {
  const error = await readAll(path, key, fileId).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StagingIntegrityError);
  expect((error as StagingIntegrityError).reason).toBe(reason);
  expect((error as Error).message).toMatch(/^staging-integrity: /);
}

describe('fixed test vectors', () => {
  it('reads the vector file back to its plaintext', async () => {
    const path = pathFor();
    await writeFile(path, VECTOR_FILE);
    expect(await readAll(path, KEY, FILE_ID)).toEqual(PLAINTEXT);
    expect(await recoverLength(path)).toBe(37);
  });

  it('matches an independent computation with node:crypto (HKDF labels, nonce, AAD, header MAC)', () => {
    const salt = Buffer.concat([Buffer.from(FILE_ID.replaceAll('-', ''), 'hex'), NONCE_PREFIX]);
    const macKey = Buffer.from(hkdfSync('sha256', KEY, salt, 'TESS staging v1 header-mac', 32));
    const recordKey = Buffer.from(hkdfSync('sha256', KEY, salt, 'TESS staging v1 record-key', 32));
    const fields = Buffer.concat([Buffer.from('TSTG'), Buffer.from([1, 1, 0, 0, 0, RECORD_SIZE]), salt]);
    const header = Buffer.concat([fields, createHmac('sha256', macKey).update(fields).digest()]);
    expect(header.toString('hex')).toBe(HEADER_HEX);
    const headerHash = createHash('sha256').update(header).digest();
    const record = (index: number, kind: number, plaintext: Buffer) => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(plaintext.length);
      head[4] = kind;
      const nonce = Buffer.alloc(12);
      NONCE_PREFIX.copy(nonce);
      nonce.writeUInt32BE(index, 7);
      nonce[11] = kind;
      const cipher = createCipheriv('aes-256-gcm', recordKey, nonce);
      cipher.setAAD(Buffer.concat([headerHash, head]));
      return Buffer.concat([head, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    };
    const total = Buffer.alloc(8);
    total.writeBigUInt64BE(37n);
    const records = Buffer.concat([
      record(0, 0, PLAINTEXT.subarray(0, 16)),
      record(1, 0, PLAINTEXT.subarray(16, 32)),
      record(2, 0, PLAINTEXT.subarray(32)),
      record(3, 1, total),
    ]);
    expect(records.toString('hex')).toBe(RECORDS_HEX);
  });

  it('the writer produces the same layout (random nonce prefix aside): header, 3 records, seal', async () => {
    const { bytes, path } = await stage(PLAINTEXT, { key: KEY, fileId: FILE_ID });
    expect(bytes.length).toBe(VECTOR_FILE.length);
    expect(bytes.subarray(0, 26)).toEqual(VECTOR_FILE.subarray(0, 26));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });
});

describe('round trip', () => {
  it.each([0, 1, 15, 16, 17, 48, 1000])('%i bytes, any chunking', async (length) => {
    const plaintext = randomBytes(length);
    for (const chunk of [1, 5, 16, 64]) {
      const { path, key, fileId } = await stage(plaintext, { chunk });
      expect(await readAll(path, key, fileId)).toEqual(plaintext);
      expect(await recoverLength(path)).toBe(length);
    }
  });

  it('with releaseInput frees every whole chunk it consumed, keeps views and stores the same bytes', async () => {
    // Whole chunks (each its own ArrayBuffer, as socket reads are) of sizes that split across records.
    const sizes = [700, 4096, 1, 9000, 333, 5000];
    const chunks = sizes.map((size) => {
      const chunk = Buffer.alloc(size);
      chunk.set(randomBytes(size));
      return chunk;
    });
    const plaintext = Buffer.concat(chunks);
    const view = Buffer.alloc(3000);
    view.set(randomBytes(3000));
    const part = view.subarray(0, 2000);
    const [path, fileId, key] = [pathFor(), randomUUID(), randomBytes(32)];
    const writer = StagingWriter.create({ path, fileId, dataKey: key, recordSize: 4096, releaseInput: true });
    await pipeline(Readable.from([...chunks, part], { objectMode: true }), writer);
    expect(await readAll(path, key, fileId)).toEqual(Buffer.concat([plaintext, view.subarray(0, 2000)]));
    expect(chunks.map((chunk) => chunk.byteLength)).toEqual(sizes.map(() => 0));
    // A view into someone else's buffer is never freed.
    expect(view.byteLength).toBe(3000);
    // Without the option the producer's chunks are left alone.
    const kept = sizes.map((size) => Buffer.alloc(size, 1));
    await pipeline(
      Readable.from(kept, { objectMode: true }),
      StagingWriter.create({ path: pathFor(), fileId, dataKey: key, recordSize: 4096 }),
    );
    expect(kept.map((chunk) => chunk.byteLength)).toEqual(sizes);
  });

  it('syncAhead: syncs in the background as it writes, the same records; a destroy waits for the sync', async () => {
    const [path, fileId, key] = [pathFor(), randomUUID(), randomBytes(32)];
    const plaintext = randomBytes(40 * 4096 + 100);
    const pieces = Array.from({ length: Math.ceil(plaintext.length / 1000) }, (_, i) =>
      plaintext.subarray(i * 1000, (i + 1) * 1000),
    );
    const options = { fileId, dataKey: key, recordSize: 4096, syncAhead: 4096 };
    await pipeline(Readable.from(pieces), StagingWriter.create({ path, ...options }));
    expect(await readAll(path, key, fileId)).toEqual(plaintext);
    // Destroyed right after a write that started a sync: the handle closes once the sync is done, the records stay.
    const open = pathFor();
    const writer = StagingWriter.create({ path: open, ...options, sealOnEnd: false });
    await new Promise<void>((resolve, reject) =>
      writer.write(plaintext.subarray(0, 3 * 4096), (error) => (error ? reject(error) : resolve())),
    );
    const closed = new Promise((resolve) => writer.once('close', resolve));
    writer.destroy();
    await closed;
    expect(await recoverLength(open)).toBe(3 * 4096);
  });

  it('never writes plaintext: a repeated marker does not appear in the file', async () => {
    const marker = Buffer.from('TESS-MARKER-'.repeat(6).slice(0, 64));
    const plaintext = Buffer.concat(Array.from({ length: 64 }, () => marker));
    const { bytes } = await stage(plaintext, { recordSize: 1024 });
    expect(bytes.includes(marker.subarray(0, 16))).toBe(false);
  });
});

describe('a file read from disk (over 256 KiB: each record read while the one before is decrypted)', () => {
  /** 20 records of 16 KiB and a short one: 21 frames of (5 + length + 16) bytes after the 65-byte header. */
  const RECORD = 16 * 1024;
  const plaintext = randomBytes(20 * RECORD + 100);
  const frame = (i: number) => 65 + i * (5 + RECORD + 16);

  it('reads every record back, in order', async () => {
    const { path, key, fileId } = await stage(plaintext, { recordSize: RECORD, chunk: 5000 });
    expect(await readAll(path, key, fileId)).toEqual(plaintext);
  });

  it('a flipped bit in a middle record: the records before it are released, then record-tag', async () => {
    const staged = await stage(plaintext, { recordSize: RECORD, chunk: 5000 });
    const bytes = Buffer.from(staged.bytes);
    bytes[frame(7) + 100]! ^= 0x01;
    await writeFile(staged.path, bytes);
    const reader = await StagingReader.open(staged.path, { dataKey: staged.key, fileId: staged.fileId });
    try {
      const into = Buffer.alloc(RECORD);
      for (let i = 0; i < 7; i++) {
        expect(Buffer.from((await reader.readInto(into))!)).toEqual(
          plaintext.subarray(i * RECORD, (i + 1) * RECORD),
        );
      }
      const error = await reader.readInto(into).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StagingIntegrityError);
      expect((error as StagingIntegrityError).reason).toBe('record-tag');
      expect((error as StagingIntegrityError).recordIndex).toBe(7);
      // Nothing of the record that failed is left in the caller's buffer.
      expect(into.equals(Buffer.alloc(RECORD))).toBe(true);
    } finally {
      await reader.close();
    }
  });

  it('closes while the next record is still being read: the descriptor goes, nothing is left pending', async () => {
    const { path, key, fileId } = await stage(plaintext, { recordSize: RECORD, chunk: 5000 });
    const descriptors = async () => (await readdir('/proc/self/fd')).length;
    const before = await descriptors();
    const reader = await StagingReader.open(path, { dataKey: key, fileId });
    expect(await descriptors()).toBe(before + 1);
    expect(await reader.readInto(Buffer.alloc(RECORD))).not.toBeNull();
    await reader.close();
    expect(await descriptors()).toBe(before);
    expect(await readAll(path, key, fileId)).toEqual(plaintext);
  });
});

describe('tampering is detected', () => {
  const plaintext = Buffer.from(Array.from({ length: 5 * 16 + 5 }, (_, i) => i));
  /** Offsets of record frames for 16-byte records: header 65, full frames 37 bytes. */
  const frame = (i: number) => 65 + i * 37;

  async function tampered(
    edit: (bytes: Buffer) => Buffer,
  ): Promise<{ path: string; key: Buffer; fileId: string }> {
    const staged = await stage(plaintext);
    await writeFile(staged.path, edit(Buffer.from(staged.bytes)));
    return staged;
  }

  it('a flipped ciphertext bit', async () => {
    const s = await tampered((b) => {
      b[frame(2) + 9]! ^= 0x01;
      return b;
    });
    await expectRejected(s.path, s.key, s.fileId, 'record-tag');
  });

  it('a flipped tag bit of the seal', async () => {
    const s = await tampered((b) => {
      b[b.length - 1]! ^= 0x80;
      return b;
    });
    await expectRejected(s.path, s.key, s.fileId, 'record-tag');
  });

  it('an edited record length', async () => {
    const s = await tampered((b) => {
      b[frame(1) + 3] = 15;
      return b;
    });
    await expect(readAll(s.path, s.key, s.fileId)).rejects.toBeInstanceOf(StagingIntegrityError);
  });

  it('truncation at a record boundary (seal dropped) and mid-record', async () => {
    for (const cut of [frame(6), frame(3), frame(3) + 10, 65, 70]) {
      const s = await tampered((b) => b.subarray(0, cut));
      await expectRejected(s.path, s.key, s.fileId, 'unsealed');
    }
  });

  it('truncation inside the header', async () => {
    const s = await tampered((b) => b.subarray(0, 40));
    await expectRejected(s.path, s.key, s.fileId, 'header-format');
  });

  it('extension after the seal', async () => {
    for (const extra of [Buffer.from([0]), (b: Buffer) => b.subarray(frame(0), frame(1))]) {
      const s = await tampered((b) => Buffer.concat([b, Buffer.isBuffer(extra) ? extra : extra(b)]));
      await expectRejected(s.path, s.key, s.fileId, 'trailing-data');
    }
  });

  it('reordered and dropped records', async () => {
    const swap = await tampered((b) =>
      Buffer.concat([
        b.subarray(0, frame(1)),
        b.subarray(frame(2), frame(3)),
        b.subarray(frame(1), frame(2)),
        b.subarray(frame(3)),
      ]),
    );
    await expectRejected(swap.path, swap.key, swap.fileId, 'record-tag');
    const drop = await tampered((b) => Buffer.concat([b.subarray(0, frame(1)), b.subarray(frame(2))]));
    await expectRejected(drop.path, drop.key, drop.fileId, 'record-tag');
  });

  it('a record spliced from another staging file of the same key and file, and of another key', async () => {
    const victim = await stage(plaintext);
    const sameKey = await stage(plaintext, { key: victim.key, fileId: victim.fileId });
    const otherKey = await stage(plaintext, { fileId: victim.fileId });
    for (const donor of [sameKey, otherKey]) {
      const bytes = Buffer.concat([
        victim.bytes.subarray(0, frame(2)),
        donor.bytes.subarray(frame(2), frame(3)),
        victim.bytes.subarray(frame(3)),
      ]);
      await writeFile(victim.path, bytes);
      await expectRejected(victim.path, victim.key, victim.fileId, 'record-tag');
    }
  });

  it('a header edit, another file id, another key', async () => {
    const edited = await tampered((b) => {
      b[30]! ^= 0x01;
      return b;
    });
    await expectRejected(edited.path, edited.key, edited.fileId, 'header-mac');
    const recordSize = await tampered((b) => {
      b[9] = 32;
      return b;
    });
    await expectRejected(recordSize.path, recordSize.key, recordSize.fileId, 'header-mac');
    const s = await stage(plaintext);
    await expectRejected(s.path, s.key, randomUUID(), 'file-id');
    await expectRejected(s.path, randomBytes(32), s.fileId, 'header-mac');
    const magic = await tampered((b) => {
      b[0] = 0x00;
      return b;
    });
    await expectRejected(magic.path, magic.key, magic.fileId, 'bad-magic');
  });

  it('an unsealed file (upload never completed)', async () => {
    const s = await stage(plaintext, { seal: false });
    await expectRejected(s.path, s.key, s.fileId, 'unsealed');
  });
});

describe('resuming an unsealed file (appends, crash recovery)', () => {
  it('recovers the length, drops a torn record, continues with the next index and seals', async () => {
    const first = randomBytes(40);
    const s = await stage(first, { seal: false });
    expect(await recoverLength(s.path)).toBe(40);
    // A crash mid-record: half a frame at the end.
    await writeFile(s.path, Buffer.concat([s.bytes, Buffer.from([0, 0, 0, 16, 0, 1, 2, 3, 4])]));
    expect(await recoverLength(s.path)).toBe(40);

    const second = randomBytes(33);
    const writer = StagingWriter.resume({ path: s.path, fileId: s.fileId, dataKey: s.key });
    expect(await writer.ready()).toBe(40);
    await pipeline(Readable.from([second]), writer);
    expect(writer.plaintextBytes).toBe(73);
    expect(await readAll(s.path, s.key, s.fileId)).toEqual(Buffer.concat([first, second]));
  });

  it('appends across several resumes before sealing', async () => {
    const parts = [randomBytes(5), randomBytes(20), randomBytes(1)];
    const s = await stage(parts[0]!, { seal: false });
    await pipeline(
      Readable.from([parts[1]!]),
      StagingWriter.resume({ path: s.path, fileId: s.fileId, dataKey: s.key, sealOnEnd: false }),
    );
    await expectRejected(s.path, s.key, s.fileId, 'unsealed');
    await pipeline(
      Readable.from([parts[2]!]),
      StagingWriter.resume({ path: s.path, fileId: s.fileId, dataKey: s.key }),
    );
    expect(await readAll(s.path, s.key, s.fileId)).toEqual(Buffer.concat(parts));
  });

  it('refuses to append to a sealed file, to a forged last record, or under another key', async () => {
    const sealed = await stage(randomBytes(20));
    await expect(
      pipeline(
        Readable.from([Buffer.from('x')]),
        StagingWriter.resume({ path: sealed.path, fileId: sealed.fileId, dataKey: sealed.key }),
      ),
    ).rejects.toMatchObject({ reason: 'sealed' });

    const open = await stage(randomBytes(20), { seal: false });
    const forged = Buffer.from(open.bytes);
    forged[forged.length - 3]! ^= 1;
    await writeFile(open.path, forged);
    await expect(
      pipeline(
        Readable.from([Buffer.from('x')]),
        StagingWriter.resume({ path: open.path, fileId: open.fileId, dataKey: open.key }),
      ),
    ).rejects.toMatchObject({ reason: 'record-tag' });
    await expect(
      pipeline(
        Readable.from([Buffer.from('x')]),
        StagingWriter.resume({ path: open.path, fileId: open.fileId, dataKey: randomBytes(32) }),
      ),
    ).rejects.toMatchObject({ reason: 'header-mac' });
  });

  it('recoverLength of a file cut inside its first record is 0', async () => {
    const s = await stage(randomBytes(20), { seal: false });
    await truncate(s.path, 65 + 10);
    expect(await recoverLength(s.path)).toBe(0);
  });
});

describe('resuming from a resume point (a tus PATCH costs its own bytes)', () => {
  /** Appends `part` to an unsealed file, from `point` when given; returns the writer's new resume point. */
  async function append(
    s: { path: string; key: Buffer; fileId: string },
    part: Buffer,
    point?: StagingResumePoint | null,
  ) {
    const writer = StagingWriter.resume({
      path: s.path,
      fileId: s.fileId,
      dataKey: s.key,
      sealOnEnd: false,
      resumeFrom: point ?? null,
    });
    await pipeline(Readable.from([part]), writer);
    return writer.resumePoint!;
  }

  /** scanStaging on `path`, counting the reads it makes. */
  async function scanCounting(path: string, point?: StagingResumePoint | null) {
    const handle = await open(path, 'r');
    let reads = 0;
    const counting = new Proxy(handle, {
      get(target, name) {
        if (name === 'read') reads++;
        const value = Reflect.get(target, name, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      return { layout: await scanStaging(counting, point), reads };
    } finally {
      await handle.close();
    }
  }

  it('walks only from the point: two reads however many records are staged, and the same layout as a full walk', async () => {
    const s = await stage(randomBytes(16 * 40 + 3), { seal: false });
    let point = await append(s, randomBytes(16 * 10 + 5));
    point = await append(s, randomBytes(7), point);
    const full = await scanCounting(s.path);
    const fromPoint = await scanCounting(s.path, point);
    expect(full.layout.dataRecords).toBe(53);
    expect(fromPoint.layout).toEqual({ ...full.layout, fromResumePoint: true });
    expect(full.reads).toBeGreaterThan(53);
    // The header and the last record's frame head.
    expect(fromPoint.reads).toBe(2);
    expect(point).toEqual({
      dataRecords: full.layout.dataRecords,
      dataLength: full.layout.dataLength,
      dataEnd: full.layout.dataEnd,
      lastRecordStart: full.layout.lastRecordStart,
    });
    expect(await recoverLength(s.path, point)).toBe(16 * 50 + 15);
  });

  it('recovers records written after the point and drops a torn one, exactly as a full walk does', async () => {
    const parts = [randomBytes(30), randomBytes(21), randomBytes(40)];
    const s = await stage(parts[0]!, { seal: false });
    const point = await append(s, parts[1]!);
    // A gateway that appended and synced the next chunk but died before keeping the new point, then a
    // crash mid-record on top.
    await append(s, parts[2]!, point);
    const bytes = await readFile(s.path);
    await writeFile(s.path, Buffer.concat([bytes, Buffer.from([0, 0, 0, 16, 0, 9, 9])]));
    expect(await recoverLength(s.path)).toBe(91);
    expect(await recoverLength(s.path, point)).toBe(91);

    const tail = randomBytes(9);
    const writer = StagingWriter.resume({
      path: s.path,
      fileId: s.fileId,
      dataKey: s.key,
      resumeFrom: point,
    });
    expect(await writer.ready()).toBe(91);
    await pipeline(Readable.from([tail]), writer);
    expect(await readAll(s.path, s.key, s.fileId)).toEqual(Buffer.concat([...parts, tail]));
  });

  it.each<[string, (p: StagingResumePoint) => StagingResumePoint]>([
    ['ahead of the file', (p) => ({ ...p, dataEnd: p.dataEnd + 37, lastRecordStart: p.dataEnd })],
    ['inside a record', (p) => ({ ...p, lastRecordStart: p.lastRecordStart! + 3 })],
    ['with a wrong record count', (p) => ({ ...p, dataRecords: p.dataRecords + 1000 })],
    [
      'with no records but an end past the header',
      (p) => ({ ...p, dataRecords: 0, dataLength: 0, lastRecordStart: null }),
    ],
    ['with non-numbers', (p) => ({ ...p, dataEnd: Number.NaN })],
  ])('a point %s is ignored for the full walk, and appends stay right', async (_, spoil) => {
    const parts = [randomBytes(45), randomBytes(20)];
    const s = await stage(parts[0]!, { seal: false });
    const point = spoil(await append(s, parts[1]!));
    const { layout } = await scanCounting(s.path, point);
    expect(layout.fromResumePoint).toBe(false);
    expect(layout.dataLength).toBe(65);
    const tail = randomBytes(3);
    await pipeline(
      Readable.from([tail]),
      StagingWriter.resume({ path: s.path, fileId: s.fileId, dataKey: s.key, resumeFrom: point }),
    );
    expect(await readAll(s.path, s.key, s.fileId)).toEqual(Buffer.concat([...parts, tail]));
  });

  it('a point past a file cut back to an earlier record is ignored; the earlier point still fits', async () => {
    const s = await stage(randomBytes(32), { seal: false });
    const early = await append(s, randomBytes(16));
    const late = await append(s, randomBytes(16), early);
    await truncate(s.path, early.dataEnd);
    expect(await recoverLength(s.path, late)).toBe(48);
    expect(await recoverLength(s.path, early)).toBe(48);
  });

  it('a forged last record is refused with or without the point', async () => {
    const s = await stage(randomBytes(20), { seal: false });
    const point = await append(s, randomBytes(20));
    const forged = await readFile(s.path);
    forged[forged.length - 3]! ^= 1;
    await writeFile(s.path, forged);
    await expect(
      pipeline(
        Readable.from([Buffer.from('x')]),
        StagingWriter.resume({ path: s.path, fileId: s.fileId, dataKey: s.key, resumeFrom: point }),
      ),
    ).rejects.toMatchObject({ reason: 'record-tag' });
  });

  it('has no resume point once sealed', async () => {
    const s = await stage(randomBytes(20), { seal: false });
    const writer = StagingWriter.resume({ path: s.path, fileId: s.fileId, dataKey: s.key });
    await pipeline(Readable.from([randomBytes(4)]), writer);
    expect(writer.resumePoint).toBeNull();
  });
});
