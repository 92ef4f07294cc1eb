import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../../test/support/bytes.js';
import { createEncryptStream } from './encrypt.stream.js';
import { IntegrityError, type IntegrityReason } from './integrity.error.js';
import { encryptObject } from './object-buffer.js';
import {
  DEFAULT_SEGMENT_SIZE,
  encodeHeader,
  HEADER_PREFIX_LENGTH,
  headerLengthFromPrefix,
  MAX_KEY_REF_LENGTH,
  MIN_HEADER_LENGTH,
  parseHeader,
  verifyHeader,
} from './object-header.js';
import { counting, VECTOR } from './test/format-test.helpers.js';

/** The header of every vector below (segment size 64). */
const VECTOR_HEADER_HEX =
  '5445535301010000006400000040' +
  '00112233445566778899aabbccddeeff' +
  '0013' +
  '6c6f63616c3a746573742d6d61737465722d31' +
  '0008' +
  'f0f1f2f3f4f5f6f7' +
  'a0a1a2a3a4a5a6' +
  'bc78d53045b5d875a9037ffe695fb86e6bd50fdd6543d2c92c31101bf0a27829';

function integrityReason(fn: () => unknown): IntegrityReason {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(IntegrityError);
    return (error as IntegrityError).reason;
  }
  throw new Error('expected an IntegrityError');
}

describe('fixed test vectors', () => {
  it('encodes the header byte for byte', () => {
    const { header } = createEncryptStream(VECTOR);
    expect(header.toString('hex')).toBe(VECTOR_HEADER_HEX);
    expect(header.length).toBe(100);
  });

  it('encrypts an empty file to the header plus one bare tag', async () => {
    const object = await encryptObject(Buffer.alloc(0), VECTOR);
    expect(object.length).toBe(116);
    expect(object.subarray(100).toString('hex')).toBe('bd8cbc41ac42db8d1ad860c266fe99ed');
    expect(sha256(object)).toBe('f65fef12d236d33cf1f7584729416b577d714ef7f0803f311c888e61a7780fa1');
  });

  it('encrypts a one-byte file', async () => {
    const object = await encryptObject(counting(1), VECTOR);
    expect(object.subarray(100).toString('hex')).toBe('6ed9f201cfc00d49e0c029ed06a7d11cf6');
    expect(sha256(object)).toBe('692a289ab5d0b9b3fc33198b27e9ea008df7c218550c4782bd94a99f70579784');
  });

  it('encrypts exactly one full segment as a single last segment', async () => {
    const object = await encryptObject(counting(48), VECTOR);
    expect(object.length).toBe(164);
    expect(sha256(object)).toBe('8fb7f328b98f367d1b4d6b4c784aa77a46d4d7b8bb2ef152b110a23cdefc1d6b');
  });

  it('encrypts the 100-byte worked example of docs/format.md', async () => {
    const object = await encryptObject(counting(100), VECTOR);
    expect(object.length).toBe(248);
    expect(object.subarray(100, 164).toString('hex')).toBe(
      'eeddf63905a3b5d257c089dd451c33a369dc05cf1416c7fd518326f2073b1b97' +
        '348d6bb0f583067c330380dfebd96c6ae23f601ae75aa1acbf28b4a49b3c88cc',
    );
    expect(object.subarray(164, 228).toString('hex')).toBe(
      '17ee5474a7a01490e8f600b4d500fb941b7c397ce47078030f7e9f872eb2123f' +
        '97d51b20c3694b6bc2965089e7735996d8509433cd2015a9d4ea4df1238f8e38',
    );
    expect(object.subarray(228).toString('hex')).toBe('2dee902e9b30a9f3359dba967013398b5e830d80');
    expect(sha256(object)).toBe('af624459b4b4fd1ddd504347c1281a83f19fb50ca76b3a138a4d0410c41cff7b');
  });

  it('encrypts with the production 1 MiB segment size', async () => {
    const options = { ...VECTOR, segmentSize: DEFAULT_SEGMENT_SIZE };
    const object = await encryptObject(counting(2 * 1048560 + 3), options);
    expect(object.subarray(0, 100).toString('hex')).toBe(
      '544553530101000000640010000000112233445566778899aabbccddeeff0013' +
        '6c6f63616c3a746573742d6d61737465722d310008f0f1f2f3f4f5f6f7a0a1a2' +
        'a3a4a5a628b2dfaf5127f188351c77d103d9ec379cb263c86e49a653e6702a6f5ebc5e3a',
    );
    expect(object.length).toBe(2097271);
    expect(sha256(object)).toBe('6a3c5e0162a6629c7fbae17a56c956f247c5cf57210e50d9ac86f709054bf367');
  });
});

describe('header structure', () => {
  const header = Buffer.from(VECTOR_HEADER_HEX, 'hex');

  it('parses every field back', () => {
    const parsed = parseHeader(header);
    expect(parsed.headerLength).toBe(100);
    expect(parsed.header).toEqual({
      version: 1,
      algorithm: 1,
      headerLength: 100,
      segmentSize: 64,
      fileId: VECTOR.fileId,
      keyRef: VECTOR.keyRef,
      wrappedKey: VECTOR.wrappedKey,
      noncePrefix: VECTOR.noncePrefix,
      mac: header.subarray(68),
    });
  });

  it('tells a reader the full header length from the first bytes', () => {
    expect(HEADER_PREFIX_LENGTH).toBe(10);
    expect(headerLengthFromPrefix(header.subarray(0, HEADER_PREFIX_LENGTH))).toBe(100);
    expect(integrityReason(() => headerLengthFromPrefix(header.subarray(0, 9)))).toBe('truncated');
    expect(integrityReason(() => parseHeader(header.subarray(0, 99)))).toBe('truncated');
  });

  it('parses a header followed by segment bytes', () => {
    const withBody = Buffer.concat([header, Buffer.alloc(50, 1)]);
    expect(parseHeader(withBody).headerLength).toBe(100);
    expect(verifyHeader(withBody, VECTOR.dataKey).fileId).toBe(VECTOR.fileId);
  });

  it('names what is wrong with a malformed header', () => {
    const edit = (offset: number, value: number): Buffer => {
      const copy = Buffer.from(header);
      copy[offset] = value;
      return copy;
    };
    expect(integrityReason(() => parseHeader(edit(0, 0x74)))).toBe('bad-magic');
    expect(integrityReason(() => parseHeader(edit(4, 2)))).toBe('unsupported-version');
    expect(integrityReason(() => parseHeader(edit(5, 2)))).toBe('unsupported-algorithm');
    expect(integrityReason(() => parseHeader(edit(9, 101)))).toBe('truncated');
    expect(integrityReason(() => parseHeader(Buffer.concat([edit(9, 101), Buffer.alloc(1)])))).toBe(
      'header-format',
    );
    expect(integrityReason(() => parseHeader(edit(9, 20)))).toBe('header-format');
    expect(integrityReason(() => parseHeader(edit(6, 1)))).toBe('header-format');
    expect(integrityReason(() => parseHeader(edit(13, 16)))).toBe('header-format');
    expect(integrityReason(() => parseHeader(edit(31, 0x14)))).toBe('header-format');
    expect(integrityReason(() => parseHeader(edit(32, 0xff)))).toBe('header-format');
  });

  it('verifies under the right key and rejects a wrong key or another file id', () => {
    expect(verifyHeader(header, VECTOR.dataKey, { fileId: VECTOR.fileId.toUpperCase() }).keyRef).toBe(
      VECTOR.keyRef,
    );
    const wrongKey = Buffer.from(VECTOR.dataKey);
    wrongKey[31] ^= 1;
    expect(integrityReason(() => verifyHeader(header, wrongKey))).toBe('header-mac');
    expect(
      integrityReason(() =>
        verifyHeader(header, VECTOR.dataKey, { fileId: 'ffffffff-4455-6677-8899-aabbccddeeff' }),
      ),
    ).toBe('file-id');
  });

  it('supports an empty wrapped key and a non-ASCII key reference of the maximum length', () => {
    const keyRef = `secret:${'é'.repeat((MAX_KEY_REF_LENGTH - 7) / 2)}`;
    expect(Buffer.byteLength(keyRef)).toBe(MAX_KEY_REF_LENGTH - 1);
    const encoded = encodeHeader({ ...VECTOR, keyRef, wrappedKey: Buffer.alloc(0) }, VECTOR.dataKey);
    expect(encoded.length).toBe(MIN_HEADER_LENGTH + MAX_KEY_REF_LENGTH - 1);
    const verified = verifyHeader(encoded, VECTOR.dataKey);
    expect(verified.keyRef).toBe(keyRef);
    expect(verified.wrappedKey.length).toBe(0);
  });

  it('refuses invalid writer inputs', () => {
    const base = { ...VECTOR };
    expect(() =>
      encodeHeader({ ...base, keyRef: 'x'.repeat(MAX_KEY_REF_LENGTH + 1) }, VECTOR.dataKey),
    ).toThrow(RangeError);
    expect(() => encodeHeader({ ...base, wrappedKey: Buffer.alloc(65536) }, VECTOR.dataKey)).toThrow(
      RangeError,
    );
    expect(() => encodeHeader({ ...base, segmentSize: 31 }, VECTOR.dataKey)).toThrow(RangeError);
    expect(() => encodeHeader({ ...base, segmentSize: 64.5 }, VECTOR.dataKey)).toThrow(RangeError);
    expect(() => encodeHeader({ ...base, fileId: 'not-a-uuid' }, VECTOR.dataKey)).toThrow(TypeError);
    expect(() => encodeHeader({ ...base, noncePrefix: Buffer.alloc(8) }, VECTOR.dataKey)).toThrow(TypeError);
    expect(() => encodeHeader(base, Buffer.alloc(16))).toThrow(TypeError);
  });

  it('draws a fresh random nonce prefix for every object', () => {
    const { noncePrefix: _fixed, ...options } = VECTOR;
    const a = parseHeader(createEncryptStream(options).header).header.noncePrefix;
    const b = parseHeader(createEncryptStream(options).header).header.noncePrefix;
    expect(a.length).toBe(7);
    expect(a.equals(b)).toBe(false);
  });
});
