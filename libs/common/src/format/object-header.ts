/**
 * TESS encrypted object format v1: header encoding, parsing and authentication.
 *
 * Invariants (see docs/format.md):
 * - The header is `prefix | fields | nonce prefix | HMAC-SHA256(all preceding header bytes)`.
 * - Both the header MAC key and the segment key are derived from the data key with HKDF-SHA256
 *   (salt = file id | nonce prefix, distinct info labels), so a verified MAC also commits to the key.
 * - Nothing derived from the data key is used before the header MAC has verified.
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { secretKey } from '../util/secret-key.js';
import { IntegrityError } from './integrity.error.js';

/** `TESS` in ASCII. */
export const MAGIC: Buffer = Buffer.from('TESS', 'ascii');
export const FORMAT_VERSION = 1;
/** Algorithm id 1: AES-256-GCM segments, HKDF-SHA256 key derivation, HMAC-SHA256 header MAC. */
export const ALGORITHM_AES_256_GCM = 1;

/** Bytes to read first: magic, version, algorithm and the total header length. */
export const HEADER_PREFIX_LENGTH = 10;
export const DATA_KEY_LENGTH = 32;
export const FILE_ID_LENGTH = 16;
export const NONCE_PREFIX_LENGTH = 7;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
export const HEADER_MAC_LENGTH = 32;
export const MAX_KEY_REF_LENGTH = 1024;
export const MAX_WRAPPED_KEY_LENGTH = 0xffff;

/** Ciphertext segment size used in production: 1 MiB (1 MiB - 16 bytes of plaintext per segment). */
export const DEFAULT_SEGMENT_SIZE = 1024 * 1024;
/**
 * Bytes handed to one cipher `update` call. Node allocates a fresh output Buffer per call; at 1 MiB
 * those allocations page-fault and cap GCM near 1 GB/s, at 64 KiB it runs at 3+ GB/s.
 */
export const CIPHER_PIECE_LENGTH = 64 * 1024;
/** Smallest accepted ciphertext segment size (small sizes exist for tests and test vectors). */
export const MIN_SEGMENT_SIZE = 32;
/** Largest accepted ciphertext segment size; bounds the memory a reader allocates per stream. */
export const MAX_SEGMENT_SIZE = 16 * 1024 * 1024;

/** Header length with an empty key reference and an empty wrapped key. */
export const MIN_HEADER_LENGTH =
  HEADER_PREFIX_LENGTH + 4 + FILE_ID_LENGTH + 2 + 2 + NONCE_PREFIX_LENGTH + HEADER_MAC_LENGTH;
export const MAX_HEADER_LENGTH = MIN_HEADER_LENGTH + MAX_KEY_REF_LENGTH + MAX_WRAPPED_KEY_LENGTH;

const HKDF_INFO_HEADER_MAC = Buffer.from('TESS v1 header-mac', 'ascii');
const HKDF_INFO_SEGMENT_KEY = Buffer.from('TESS v1 segment-key', 'ascii');

const OFFSET_VERSION = 4;
const OFFSET_ALGORITHM = 5;
const OFFSET_HEADER_LENGTH = 6;
const OFFSET_SEGMENT_SIZE = 10;
const OFFSET_FILE_ID = 14;
const OFFSET_KEY_REF_LENGTH = 30;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The decoded fields of a v1 header. Parsing alone does not make them trustworthy: see {@link verifyHeader}. */
export interface ObjectHeader {
  version: number;
  algorithm: number;
  /** Total header length in bytes, MAC included; segment 0 starts at this offset. */
  headerLength: number;
  /** Ciphertext bytes per segment (plaintext bytes + 16-byte tag) for every segment but the last. */
  segmentSize: number;
  /** The file's UUID, lower case. */
  fileId: string;
  /** Identifies the master key / secret that unwraps `wrappedKey`. */
  keyRef: string;
  /** The data key wrapped by the master key; empty in per-file-secret mode. */
  wrappedKey: Buffer;
  noncePrefix: Buffer;
  mac: Buffer;
}

/** The fields a writer chooses; everything else in the header is computed. */
export interface HeaderFields {
  segmentSize: number;
  fileId: string;
  keyRef: string;
  wrappedKey: Buffer;
  noncePrefix: Buffer;
}

/** A header whose MAC verified under a data key, with the material needed to open segments. */
export interface OpenedHeader {
  header: ObjectHeader;
  /** HKDF-derived AES-256-GCM key for the segments. */
  segmentKey: Buffer;
  /** SHA-256 of the complete header (MAC included): the AAD of every segment. */
  aad: Buffer;
}

/** Converts a UUID string to its 16 bytes; throws TypeError when it is not a UUID. */
export function fileIdToBytes(fileId: string): Buffer {
  if (!UUID_PATTERN.test(fileId)) {
    throw new TypeError(`fileId must be a UUID, got ${JSON.stringify(fileId)}`);
  }
  return Buffer.from(fileId.replaceAll('-', ''), 'hex');
}

/** Formats 16 bytes as a lower-case UUID string. */
export function fileIdFromBytes(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** A fresh random nonce prefix for a new object. */
export function randomNoncePrefix(): Buffer {
  return randomBytes(NONCE_PREFIX_LENGTH);
}

/** Throws RangeError unless `segmentSize` is an integer within [MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE]. */
export function assertSegmentSize(segmentSize: number): void {
  if (!Number.isInteger(segmentSize) || segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new RangeError(
      `segmentSize must be an integer between ${MIN_SEGMENT_SIZE} and ${MAX_SEGMENT_SIZE}, got ${segmentSize}`,
    );
  }
}

function assertDataKey(dataKey: Buffer): void {
  if (!Buffer.isBuffer(dataKey) || dataKey.length !== DATA_KEY_LENGTH) {
    throw new TypeError(`dataKey must be a ${DATA_KEY_LENGTH}-byte Buffer`);
  }
}

function deriveKey(dataKey: Buffer, salt: Buffer, info: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey(dataKey), salt, info, 32));
}

function hkdfSalt(fileIdBytes: Buffer, noncePrefix: Buffer): Buffer {
  return Buffer.concat([fileIdBytes, noncePrefix]);
}

/** Serializes and authenticates a v1 header. Throws TypeError/RangeError on invalid fields. */
export function encodeHeader(fields: HeaderFields, dataKey: Buffer): Buffer {
  assertDataKey(dataKey);
  assertSegmentSize(fields.segmentSize);
  const fileId = fileIdToBytes(fields.fileId);
  const keyRef = Buffer.from(fields.keyRef, 'utf8');
  if (keyRef.length > MAX_KEY_REF_LENGTH) {
    throw new RangeError(`keyRef must be at most ${MAX_KEY_REF_LENGTH} UTF-8 bytes, got ${keyRef.length}`);
  }
  if (!Buffer.isBuffer(fields.wrappedKey) || fields.wrappedKey.length > MAX_WRAPPED_KEY_LENGTH) {
    throw new RangeError(`wrappedKey must be a Buffer of at most ${MAX_WRAPPED_KEY_LENGTH} bytes`);
  }
  if (!Buffer.isBuffer(fields.noncePrefix) || fields.noncePrefix.length !== NONCE_PREFIX_LENGTH) {
    throw new TypeError(`noncePrefix must be a ${NONCE_PREFIX_LENGTH}-byte Buffer`);
  }

  const headerLength = MIN_HEADER_LENGTH + keyRef.length + fields.wrappedKey.length;
  const out = Buffer.alloc(headerLength);
  MAGIC.copy(out, 0);
  out.writeUInt8(FORMAT_VERSION, OFFSET_VERSION);
  out.writeUInt8(ALGORITHM_AES_256_GCM, OFFSET_ALGORITHM);
  out.writeUInt32BE(headerLength, OFFSET_HEADER_LENGTH);
  out.writeUInt32BE(fields.segmentSize, OFFSET_SEGMENT_SIZE);
  fileId.copy(out, OFFSET_FILE_ID);
  let offset = OFFSET_KEY_REF_LENGTH;
  offset = out.writeUInt16BE(keyRef.length, offset);
  offset += keyRef.copy(out, offset);
  offset = out.writeUInt16BE(fields.wrappedKey.length, offset);
  offset += fields.wrappedKey.copy(out, offset);
  offset += fields.noncePrefix.copy(out, offset);

  const macKey = deriveKey(dataKey, hkdfSalt(fileId, fields.noncePrefix), HKDF_INFO_HEADER_MAC);
  createHmac('sha256', secretKey(macKey)).update(out.subarray(0, offset)).digest().copy(out, offset);
  return out;
}

/**
 * Validates the first {@link HEADER_PREFIX_LENGTH} bytes of an object and returns the total header
 * length, so a reader knows how many bytes to fetch before {@link parseHeader}.
 */
export function headerLengthFromPrefix(prefix: Buffer): number {
  if (prefix.length < HEADER_PREFIX_LENGTH) {
    throw new IntegrityError(
      'truncated',
      `Object too short for a TESS header prefix (${prefix.length} < ${HEADER_PREFIX_LENGTH} bytes)`,
    );
  }
  if (!prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new IntegrityError('bad-magic', 'Object does not start with the TESS magic');
  }
  const version = prefix.readUInt8(OFFSET_VERSION);
  if (version !== FORMAT_VERSION) {
    throw new IntegrityError('unsupported-version', `Unsupported TESS format version ${version}`);
  }
  const algorithm = prefix.readUInt8(OFFSET_ALGORITHM);
  if (algorithm !== ALGORITHM_AES_256_GCM) {
    throw new IntegrityError('unsupported-algorithm', `Unsupported TESS algorithm id ${algorithm}`);
  }
  const headerLength = prefix.readUInt32BE(OFFSET_HEADER_LENGTH);
  if (headerLength < MIN_HEADER_LENGTH || headerLength > MAX_HEADER_LENGTH) {
    throw new IntegrityError('header-format', `Header length ${headerLength} is out of range`);
  }
  return headerLength;
}

/**
 * Decodes the header at the start of `bytes` (which may continue with segments). Checks structure
 * only: the MAC needs the data key, so call {@link verifyHeader} before trusting any field beyond
 * `keyRef`/`wrappedKey` (which are needed to obtain that key).
 */
export function parseHeader(bytes: Buffer): { header: ObjectHeader; headerLength: number } {
  const headerLength = headerLengthFromPrefix(bytes);
  if (bytes.length < headerLength) {
    throw new IntegrityError(
      'truncated',
      `Header needs ${headerLength} bytes, only ${bytes.length} available`,
    );
  }
  const segmentSize = bytes.readUInt32BE(OFFSET_SEGMENT_SIZE);
  if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new IntegrityError('header-format', `Segment size ${segmentSize} is out of range`);
  }
  const fileId = fileIdFromBytes(bytes.subarray(OFFSET_FILE_ID, OFFSET_FILE_ID + FILE_ID_LENGTH));

  const fieldsEnd = headerLength - NONCE_PREFIX_LENGTH - HEADER_MAC_LENGTH;
  let offset = OFFSET_KEY_REF_LENGTH;
  const keyRefLength = bytes.readUInt16BE(offset);
  offset += 2;
  if (keyRefLength > MAX_KEY_REF_LENGTH || offset + keyRefLength + 2 > fieldsEnd) {
    throw new IntegrityError('header-format', `Key reference length ${keyRefLength} does not fit the header`);
  }
  let keyRef: string;
  try {
    keyRef = utf8.decode(bytes.subarray(offset, offset + keyRefLength));
  } catch {
    throw new IntegrityError('header-format', 'Key reference is not valid UTF-8');
  }
  offset += keyRefLength;
  const wrappedKeyLength = bytes.readUInt16BE(offset);
  offset += 2;
  if (offset + wrappedKeyLength !== fieldsEnd) {
    throw new IntegrityError(
      'header-format',
      `Header fields do not add up to the declared header length ${headerLength}`,
    );
  }
  const wrappedKey = Buffer.from(bytes.subarray(offset, offset + wrappedKeyLength));
  offset += wrappedKeyLength;
  const noncePrefix = Buffer.from(bytes.subarray(offset, offset + NONCE_PREFIX_LENGTH));
  offset += NONCE_PREFIX_LENGTH;
  const mac = Buffer.from(bytes.subarray(offset, offset + HEADER_MAC_LENGTH));

  return {
    header: {
      version: FORMAT_VERSION,
      algorithm: ALGORITHM_AES_256_GCM,
      headerLength,
      segmentSize,
      fileId,
      keyRef,
      wrappedKey,
      noncePrefix,
      mac,
    },
    headerLength,
  };
}

/** Options for {@link verifyHeader}. */
export interface VerifyHeaderOptions {
  /** When set, the header must name this file id, else IntegrityError('file-id') (objects swapped). */
  fileId?: string;
}

/**
 * Parses and authenticates a header under `dataKey` and derives the segment key. Internal to the
 * format module: callers use {@link verifyHeader} or the decrypt streams.
 */
export function openHeader(
  headerBytes: Buffer,
  dataKey: Buffer,
  options: VerifyHeaderOptions = {},
): OpenedHeader {
  assertDataKey(dataKey);
  const { header, headerLength } = parseHeader(headerBytes);
  const bytes = headerBytes.subarray(0, headerLength);
  const macOffset = headerLength - HEADER_MAC_LENGTH;
  const salt = hkdfSalt(bytes.subarray(OFFSET_FILE_ID, OFFSET_FILE_ID + FILE_ID_LENGTH), header.noncePrefix);
  const macKey = deriveKey(dataKey, salt, HKDF_INFO_HEADER_MAC);
  const expected = createHmac('sha256', secretKey(macKey)).update(bytes.subarray(0, macOffset)).digest();
  if (!timingSafeEqual(expected, bytes.subarray(macOffset, headerLength))) {
    throw new IntegrityError('header-mac', 'Header MAC does not verify: header altered or wrong data key');
  }
  if (options.fileId !== undefined && header.fileId !== options.fileId.toLowerCase()) {
    throw new IntegrityError(
      'file-id',
      `Object belongs to file ${header.fileId}, expected ${options.fileId.toLowerCase()}`,
    );
  }
  return {
    header,
    segmentKey: deriveKey(dataKey, salt, HKDF_INFO_SEGMENT_KEY),
    aad: createHash('sha256').update(bytes).digest(),
  };
}

/**
 * Authenticates a header under `dataKey` (which commits to the key: a wrong key fails here, before
 * any segment is touched) and returns its fields. Throws IntegrityError ('header-mac', 'file-id',
 * or a structural reason from {@link parseHeader}).
 */
export function verifyHeader(
  headerBytes: Buffer,
  dataKey: Buffer,
  options: VerifyHeaderOptions = {},
): ObjectHeader {
  return openHeader(headerBytes, dataKey, options).header;
}

/** Writes the 12-byte GCM nonce of segment `index` into `out`: prefix | u32 BE index | last flag. */
export function writeSegmentNonce(out: Buffer, noncePrefix: Buffer, index: number, last: boolean): Buffer {
  noncePrefix.copy(out, 0, 0, NONCE_PREFIX_LENGTH);
  out.writeUInt32BE(index, NONCE_PREFIX_LENGTH);
  out.writeUInt8(last ? 1 : 0, NONCE_PREFIX_LENGTH + 4);
  return out;
}
