import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createDecryptStream, createObjectDecryptStream } from './decrypt.stream.js';
import { createEncryptStream, type EncryptOptions, SegmentEncryptor } from './encrypt.stream.js';
import { decryptObject, encryptObject } from './object-buffer.js';
import { parseHeader } from './object-header.js';
import { ciphertextLength, planRange, segmentCount } from './segment-layout.js';
import { counting, P, prng, randomChunks, run, S, VECTOR } from './test/format-test.helpers.js';

function options(segmentSize = S): EncryptOptions {
  return {
    dataKey: randomBytes(32),
    fileId: randomUUID(),
    keyRef: 'local:k1',
    wrappedKey: randomBytes(40),
    segmentSize,
  };
}

const SIZES: Array<[string, number]> = [
  ['an empty file', 0],
  ['one byte', 1],
  ['one byte short of a segment', P - 1],
  ['exactly one segment', P],
  ['one byte past a segment', P + 1],
  ['exactly three segments', 3 * P],
  ['several segments and 3 bytes', 7 * P + 3],
];

describe('encrypt then decrypt', () => {
  for (const [name, size] of SIZES) {
    it(`round-trips ${name} (${size} bytes) under random chunking`, async () => {
      const opts = options();
      const plaintext = randomBytes(size);
      for (const seed of [1, 2, 3]) {
        const encrypt = createEncryptStream(opts);
        const encrypted = await run(encrypt.stream, randomChunks(plaintext, seed, 2 * S + 5));
        expect(encrypted.error).toBeUndefined();
        const object = encrypted.output;
        const { headerLength } = parseHeader(object);
        expect(object.subarray(0, headerLength).equals(encrypt.header)).toBe(true);
        expect(object.length).toBe(ciphertextLength(size, { headerLength, segmentSize: S }));
        expect(encrypt.stream.plaintextBytes).toBe(size);
        expect(encrypt.stream.ciphertextBytes).toBe(object.length);
        expect(encrypt.stream.segments).toBe(segmentCount(size, S));

        const whole = await run(
          createObjectDecryptStream({ getDataKey: () => opts.dataKey, fileId: opts.fileId }),
          randomChunks(object, seed + 100, 3 * S),
        );
        expect(whole.error).toBeUndefined();
        expect(whole.output.equals(plaintext)).toBe(true);

        const ranged = await run(
          createDecryptStream({
            headerBytes: object.subarray(0, headerLength),
            dataKey: opts.dataKey,
            ciphertextLength: object.length,
            fileId: opts.fileId,
          }),
          randomChunks(object.subarray(headerLength), seed + 200, 3 * S),
        );
        expect(ranged.error).toBeUndefined();
        expect(ranged.output.equals(plaintext)).toBe(true);
      }
    });
  }

  it('round-trips with the production segment size and 64 KiB reads', async () => {
    const opts = options(1024 * 1024);
    const plaintext = randomBytes(2 * 1048560 + 12345);
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < plaintext.length; offset += 65536) {
      chunks.push(plaintext.subarray(offset, offset + 65536));
    }
    const encrypted = await run(createEncryptStream(opts).stream, chunks);
    expect(encrypted.error).toBeUndefined();
    expect(encrypted.output.length).toBe(
      plaintext.length + 3 * 16 + parseHeader(encrypted.output).headerLength,
    );
    expect((await decryptObject(encrypted.output, opts.dataKey)).equals(plaintext)).toBe(true);
  });

  it('streams: segments leave the encryptor before the input ends, keeping one segment of lookahead', async () => {
    const { header, stream } = createEncryptStream(VECTOR);
    const seen: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => seen.push(chunk));
    const write = (data: Buffer): Promise<void> =>
      new Promise((resolve, reject) => stream.write(data, (error) => (error ? reject(error) : resolve())));
    await write(counting(2 * P));
    // Two full segments in: the second might still be the last one, so only the first is sealed.
    expect(Buffer.concat(seen).length).toBe(header.length + S);
    await write(Buffer.alloc(1));
    expect(Buffer.concat(seen).length).toBe(header.length + 2 * S);
    await new Promise<void>((resolve) => stream.end(resolve));
    expect(Buffer.concat(seen).length).toBe(header.length + 2 * S + 17);
  });
});

describe('ranged decryption', () => {
  const opts = options();
  const L = 6 * P + 11;
  const plaintext = randomBytes(L);
  const objectPromise = encryptObject(plaintext, opts);

  const cases: Array<[string, number, number]> = [
    ['the first byte', 0, 0],
    ['the last byte', L - 1, L - 1],
    ['the bytes across a segment boundary', P - 3, P + 2],
    ['exactly one middle segment', 2 * P, 3 * P - 1],
    ['a suffix', L - 30, L - 1],
    ['everything', 0, L - 1],
    ['a range inside the short last segment', 6 * P + 2, 6 * P + 9],
  ];
  for (const [name, start, end] of cases) {
    it(`returns ${name} (${start}-${end}) equal to the plaintext slice`, async () => {
      const object = await objectPromise;
      const result = await decryptObject(object, opts.dataKey, { range: { start, end } });
      expect(result.equals(plaintext.subarray(start, end + 1))).toBe(true);
    });
  }

  it('returns the plaintext slice for random ranges fed in random chunks', async () => {
    const object = await objectPromise;
    const { headerLength } = parseHeader(object);
    const random = prng(42);
    for (let i = 0; i < 150; i++) {
      const a = Math.floor(random(L));
      const b = Math.floor(random(L));
      const [start, end] = a <= b ? [a, b] : [b, a];
      const plan = planRange({ headerLength, segmentSize: S }, object.length, start, end);
      const stream = createDecryptStream({
        headerBytes: object.subarray(0, headerLength),
        dataKey: opts.dataKey,
        ciphertextLength: object.length,
        ...plan,
      });
      const slice = object.subarray(plan.ciphertextStart, plan.ciphertextEnd + 1);
      const result = await run(stream, randomChunks(slice, i, S + 7));
      expect(result.error).toBeUndefined();
      expect(result.output.equals(plaintext.subarray(start, end + 1))).toBe(true);
    }
  });

  it('never needs earlier segments: a damaged segment 0 does not affect a range in segment 3', async () => {
    const object = Buffer.from(await objectPromise);
    const { headerLength } = parseHeader(object);
    object[headerLength + 5] ^= 0x01;
    const result = await decryptObject(object, opts.dataKey, { range: { start: 3 * P + 1, end: 3 * P + 9 } });
    expect(result.equals(plaintext.subarray(3 * P + 1, 3 * P + 10))).toBe(true);
    await expect(decryptObject(object, opts.dataKey, { range: { start: 0, end: 0 } })).rejects.toMatchObject({
      reason: 'segment-tag',
    });
  });

  it('rejects skip and segment arguments that do not fit the object', async () => {
    const object = await objectPromise;
    const { headerLength } = parseHeader(object);
    const base = {
      headerBytes: object.subarray(0, headerLength),
      dataKey: opts.dataKey,
      ciphertextLength: object.length,
    };
    expect(() => createDecryptStream({ ...base, firstSegment: 7 })).toThrow(RangeError);
    expect(() => createDecryptStream({ ...base, firstSegment: 2, lastSegment: 1 })).toThrow(RangeError);
    expect(() => createDecryptStream({ ...base, skip: P })).toThrow(RangeError);
    expect(() => createDecryptStream({ ...base, firstSegment: 6, skip: 11 })).toThrow(RangeError);
    expect(() => createDecryptStream({ ...base, take: -1 })).toThrow(RangeError);
  });
});

describe('SegmentEncryptor', () => {
  it('zeroes the plaintext it buffered once the object is sealed, however little it held', () => {
    const pieces: Buffer[] = [];
    const encryptor = new SegmentEncryptor({ ...VECTOR, segmentSize: 1024 }, (piece) => pieces.push(piece));
    const secret = Buffer.alloc(300, 0x5a);
    encryptor.update(secret.subarray(0, 100));
    encryptor.update(secret.subarray(100));
    const buffered = (encryptor as unknown as { pending: Buffer }).pending;
    expect(buffered.subarray(0, 300).equals(secret)).toBe(true);
    encryptor.final();
    expect(buffered.subarray(0, 300).every((byte) => byte === 0)).toBe(true);
    expect(Buffer.concat(pieces).includes(secret.subarray(0, 32))).toBe(false);
  });
});
