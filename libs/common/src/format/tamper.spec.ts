import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createDecryptStream, createObjectDecryptStream } from './decrypt.stream.js';
import type { EncryptOptions } from './encrypt.stream.js';
import { IntegrityError, type IntegrityReason } from './integrity.error.js';
import { decryptObject, encryptObject } from './object-buffer.js';
import { encodeHeader, parseHeader } from './object-header.js';
import { P, type RunResult, randomChunks, run, runFactory, S } from './test/format-test.helpers.js';

/** Five segments: 0..3 full (48 plaintext bytes each), 4 holds the last 5 bytes. */
const L = 4 * P + 5;

interface Fixture {
  options: EncryptOptions;
  plaintext: Buffer;
  object: Buffer;
  headerLength: number;
}

async function fixture(length = L): Promise<Fixture> {
  const options: EncryptOptions = {
    dataKey: randomBytes(32),
    fileId: randomUUID(),
    keyRef: 'local:master-1',
    wrappedKey: randomBytes(40),
    segmentSize: S,
  };
  const plaintext = randomBytes(length);
  const object = await encryptObject(plaintext, options);
  return { options, plaintext, object, headerLength: parseHeader(object).headerLength };
}

function segmentAt(f: Fixture, index: number): Buffer {
  const start = f.headerLength + index * S;
  return f.object.subarray(start, Math.min(start + S, f.object.length));
}

function segmentsOf(f: Fixture): Buffer[] {
  const count = Math.ceil((f.object.length - f.headerLength) / S);
  return Array.from({ length: count }, (_, i) => segmentAt(f, i));
}

function assemble(f: Fixture, segments: Buffer[], header = f.object.subarray(0, f.headerLength)): Buffer {
  return Buffer.concat([header, ...segments]);
}

interface Expectation {
  /** Index of the first segment that must not release plaintext. */
  badSegment: number;
  /** Expected reason(s); any IntegrityError is accepted when omitted. */
  reason?: IntegrityReason | IntegrityReason[];
  dataKey?: Buffer;
  fileId?: string;
}

function checkRejected(f: Fixture, result: RunResult, emittedCount: number, expectation: Expectation): void {
  expect(result.error).toBeInstanceOf(IntegrityError);
  const reasons = expectation.reason === undefined ? undefined : [expectation.reason].flat();
  if (reasons !== undefined) expect(reasons).toContain((result.error as IntegrityError).reason);
  const limit = expectation.badSegment * P;
  expect(result.output.length).toBeLessThanOrEqual(limit);
  expect(emittedCount).toBeLessThanOrEqual(limit);
  expect(result.output.equals(f.plaintext.subarray(0, result.output.length))).toBe(true);
}

/**
 * Decrypts `tampered` both ways a reader can: as a whole object (header first, end of input marks
 * the last segment) and as a gateway does (header fetched apart, object length from stat, segments
 * streamed), each with random chunking; both must fail with an IntegrityError and release no
 * plaintext from `badSegment` onward.
 */
async function expectRejected(f: Fixture, tampered: Buffer, expectation: Expectation): Promise<void> {
  const dataKey = expectation.dataKey ?? f.options.dataKey;
  const fileId = expectation.fileId ?? f.options.fileId;

  const whole = createObjectDecryptStream({ getDataKey: () => dataKey, fileId });
  const wholeResult = await run(whole, randomChunks(tampered, tampered.length, 2 * S));
  checkRejected(f, wholeResult, whole.plaintextBytes, expectation);

  let emitted = 0;
  const rangedResult = await runFactory(
    () => {
      const { headerLength } = parseHeader(tampered);
      const stream = createDecryptStream({
        headerBytes: tampered.subarray(0, headerLength),
        dataKey,
        ciphertextLength: tampered.length,
        fileId,
      });
      stream.on('data', (chunk: Buffer) => {
        emitted += chunk.length;
      });
      return stream;
    },
    randomChunks(tampered.subarray(Math.min(tampered.length, parseHeaderLength(tampered))), 7, 2 * S),
  );
  checkRejected(f, rangedResult, emitted, expectation);
}

function parseHeaderLength(bytes: Buffer): number {
  try {
    return parseHeader(bytes).headerLength;
  } catch {
    return 0;
  }
}

describe('tamper detection', () => {
  it('decrypts the untampered fixture (control)', async () => {
    const f = await fixture();
    expect(
      (await decryptObject(f.object, f.options.dataKey, { fileId: f.options.fileId })).equals(f.plaintext),
    ).toBe(true);
  });

  it('rejects a flipped byte in the header before any segment', async () => {
    const f = await fixture();
    const tampered = Buffer.from(f.object);
    tampered[40] ^= 0x01; // inside the key reference
    await expectRejected(f, tampered, { badSegment: 0, reason: 'header-mac' });
  });

  it('rejects a flipped bit at every header position', async () => {
    const f = await fixture();
    for (let offset = 0; offset < f.headerLength; offset++) {
      const tampered = Buffer.from(f.object);
      tampered[offset] ^= 0x10;
      await expectRejected(f, tampered, { badSegment: 0 });
    }
  });

  it('rejects a flipped byte in a middle segment body, releasing only the segments before it', async () => {
    const f = await fixture();
    const tampered = Buffer.from(f.object);
    tampered[f.headerLength + 2 * S + 10] ^= 0x80;
    await expectRejected(f, tampered, { badSegment: 2, reason: 'segment-tag' });
    const whole = await run(createObjectDecryptStream({ getDataKey: () => f.options.dataKey }), [tampered]);
    expect(whole.output.equals(f.plaintext.subarray(0, 2 * P))).toBe(true);
  });

  it('rejects a flipped byte in the last tag', async () => {
    const f = await fixture();
    const tampered = Buffer.from(f.object);
    tampered[tampered.length - 1] ^= 0x01;
    await expectRejected(f, tampered, { badSegment: 4, reason: 'segment-tag' });
  });

  it('rejects an object truncated by one byte', async () => {
    const f = await fixture();
    await expectRejected(f, f.object.subarray(0, f.object.length - 1), {
      badSegment: 4,
      reason: 'segment-tag',
    });
  });

  it('rejects an object truncated into the last tag as an impossible length', async () => {
    const f = await fixture();
    await expectRejected(f, f.object.subarray(0, f.object.length - 6), { badSegment: 4, reason: 'length' });
  });

  it('rejects an object missing its whole last segment', async () => {
    const f = await fixture();
    await expectRejected(f, assemble(f, segmentsOf(f).slice(0, 4)), { badSegment: 3, reason: 'segment-tag' });
  });

  it('rejects an object missing a whole middle segment (a dropped part)', async () => {
    const f = await fixture();
    const segments = segmentsOf(f);
    await expectRejected(f, assemble(f, [segments[0], ...segments.slice(2)]), {
      badSegment: 1,
      reason: 'segment-tag',
    });
  });

  it('rejects an object cut at a segment boundary after exactly k full segments', async () => {
    const f = await fixture(4 * P);
    await expectRejected(f, assemble(f, segmentsOf(f).slice(0, 3)), { badSegment: 2, reason: 'segment-tag' });
  });

  it('rejects an appended segment', async () => {
    const f = await fixture();
    const segments = segmentsOf(f);
    await expectRejected(f, assemble(f, [...segments, segments[1]]), {
      badSegment: 4,
      reason: 'segment-tag',
    });
  });

  it('rejects a segment appended after an object of exactly k full segments', async () => {
    const f = await fixture(4 * P);
    const segments = segmentsOf(f);
    await expectRejected(f, assemble(f, [...segments, segments[0]]), {
      badSegment: 3,
      reason: 'segment-tag',
    });
  });

  it('rejects two reordered segments', async () => {
    const f = await fixture();
    const [s0, s1, s2, s3, s4] = segmentsOf(f);
    await expectRejected(f, assemble(f, [s0, s2, s1, s3, s4]), { badSegment: 1, reason: 'segment-tag' });
  });

  it('rejects a duplicated segment', async () => {
    const f = await fixture();
    const [s0, s1, s2, s3, s4] = segmentsOf(f);
    await expectRejected(f, assemble(f, [s0, s1, s1, s2, s3, s4]), { badSegment: 2, reason: 'segment-tag' });
  });

  it('rejects another file’s object served in place of this one (swapped objects)', async () => {
    const a = await fixture();
    const b = await fixture();
    // The reader unwraps the key named by the header it got (b's), so the header verifies: the file id must not.
    await expectRejected(a, b.object, { badSegment: 0, reason: 'file-id', dataKey: b.options.dataKey });
    // With this file's key the swapped header does not even verify.
    await expectRejected(a, b.object, { badSegment: 0, reason: 'header-mac' });
  });

  it('rejects segments spliced from another object under this object’s header', async () => {
    const a = await fixture();
    const b = await fixture();
    await expectRejected(a, assemble(a, segmentsOf(b)), { badSegment: 0, reason: 'segment-tag' });
    const mixed = segmentsOf(a);
    mixed[2] = segmentAt(b, 2);
    await expectRejected(a, assemble(a, mixed), { badSegment: 2, reason: 'segment-tag' });
  });

  it('rejects a wrong data key before decrypting any segment', async () => {
    const f = await fixture();
    await expectRejected(f, f.object, { badSegment: 0, reason: 'header-mac', dataKey: randomBytes(32) });
  });

  it('rejects an edited segment size field with the rest of the header intact', async () => {
    const f = await fixture();
    const tampered = Buffer.from(f.object);
    tampered.writeUInt32BE(2 * S, 10);
    await expectRejected(f, tampered, { badSegment: 0, reason: 'header-mac' });
  });

  it('rejects an edited file id field with the rest of the header intact', async () => {
    const f = await fixture();
    const tampered = Buffer.from(f.object);
    tampered[14] ^= 0xff;
    await expectRejected(f, tampered, {
      badSegment: 0,
      reason: 'header-mac',
      fileId: parseHeader(tampered).header.fileId,
    });
  });

  it('rejects segments under a re-authenticated edited header (segments are bound to the exact header)', async () => {
    const f = await fixture();
    const { header } = parseHeader(f.object);
    const otherFileId = randomUUID();
    const forged = encodeHeader({ ...header, fileId: otherFileId }, f.options.dataKey);
    await expectRejected(f, assemble(f, segmentsOf(f), forged), {
      badSegment: 0,
      reason: 'segment-tag',
      fileId: otherFileId,
    });
  });

  it('rejects a ranged read whose source ends early or runs long', async () => {
    const f = await fixture();
    const make = () =>
      createDecryptStream({
        headerBytes: f.object.subarray(0, f.headerLength),
        dataKey: f.options.dataKey,
        ciphertextLength: f.object.length,
        firstSegment: 1,
        lastSegment: 2,
      });
    const range = f.object.subarray(f.headerLength + S, f.headerLength + 3 * S);
    const short = await run(make(), [range.subarray(0, range.length - 1)]);
    expect(short.error).toMatchObject({ name: 'IntegrityError', reason: 'truncated' });
    expect(short.output.equals(f.plaintext.subarray(P, 2 * P))).toBe(true);
    const long = await run(make(), [range, Buffer.alloc(1)]);
    expect(long.error).toMatchObject({ name: 'IntegrityError', reason: 'trailing-data' });
  });

  it('rejects an object that ends inside its header or has no segment', async () => {
    const f = await fixture();
    for (const cut of [0, 5, f.headerLength - 1, f.headerLength, f.headerLength + 15]) {
      const result = await run(createObjectDecryptStream({ getDataKey: () => f.options.dataKey }), [
        f.object.subarray(0, cut),
      ]);
      expect(result.error).toBeInstanceOf(IntegrityError);
      expect(result.output.length).toBe(0);
    }
  });

  it('reports a failing key lookup as a stream error', async () => {
    const f = await fixture();
    const result = await run(
      createObjectDecryptStream({
        getDataKey: () => Promise.reject(new Error('master key unavailable')),
      }),
      [f.object],
    );
    expect(result.error).toMatchObject({ message: 'master key unavailable' });
    expect(result.output.length).toBe(0);
  });
});
