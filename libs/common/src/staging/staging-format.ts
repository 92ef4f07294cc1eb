/**
 * TESS staging format v1: how an upload sits in `TEMP_DIR` until a worker has stored it. Specified in
 * docs/format.md ("Staging format, version 1").
 *
 * Invariants:
 * - file = header (65 bytes, HMAC'd) | record 0 | record 1 | ... | seal record;
 * - record = u32 BE length L | u8 kind | AES-256-GCM(record key, nonce, AAD)(L bytes) | tag (16);
 *   nonce = nonce prefix (7) | u32 BE record index | kind; AAD = SHA-256(header) | L | kind;
 * - the seal record (kind 1) carries the total plaintext length as u64 BE and is the last bytes of the file;
 * - keys come from the file's data key with HKDF-SHA256 (salt = file id | nonce prefix) under labels distinct
 *   from the object format's, so staging and object keys are independent although both derive from one key.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  timingSafeEqual,
} from 'node:crypto';
import { fileIdFromBytes, fileIdToBytes } from '../format/object-header.js';
import { copyBytes } from '../util/copy-bytes.js';
import { releaseBuffer } from '../util/release-buffer.js';
import { secretKey } from '../util/secret-key.js';
import { StagingIntegrityError } from './staging-integrity.error.js';

export const STAGING_MAGIC: Buffer = Buffer.from('TSTG', 'ascii');
export const STAGING_VERSION = 1;
/** Algorithm 1: AES-256-GCM records, HKDF-SHA256, HMAC-SHA256 header MAC. */
export const STAGING_ALGORITHM = 1;
export const STAGING_HEADER_LENGTH = 65;
export const RECORD_HEAD_LENGTH = 5;
export const RECORD_TAG_LENGTH = 16;
/** Plaintext bytes per full data record in production. */
export const DEFAULT_RECORD_SIZE = 1024 * 1024;
export const MIN_RECORD_SIZE = 16;
export const MAX_RECORD_SIZE = 16 * 1024 * 1024;
export const SEAL_PLAINTEXT_LENGTH = 8;

export const RECORD_DATA = 0;
export const RECORD_SEAL = 1;
export type RecordKind = typeof RECORD_DATA | typeof RECORD_SEAL;

const NONCE_PREFIX_LENGTH = 7;
const MAC_OFFSET = 33;
/** Bytes per cipher update: 64 KiB pieces avoid the page faults of 1 MiB output allocations. */
const PIECE = 64 * 1024;
const INFO_HEADER_MAC = Buffer.from('TESS staging v1 header-mac', 'ascii');
const INFO_RECORD_KEY = Buffer.from('TESS staging v1 record-key', 'ascii');

export interface StagingHeader {
  recordSize: number;
  fileId: string;
  noncePrefix: Buffer;
}

/** Keys and header of one staging file: everything needed to write or open its records. */
export interface StagingContext extends StagingHeader {
  header: Buffer;
  headerHash: Buffer;
  recordKey: Buffer;
}

export function assertRecordSize(recordSize: number): void {
  if (!Number.isInteger(recordSize) || recordSize < MIN_RECORD_SIZE || recordSize > MAX_RECORD_SIZE) {
    throw new RangeError(
      `recordSize must be an integer between ${MIN_RECORD_SIZE} and ${MAX_RECORD_SIZE}, got ${recordSize}`,
    );
  }
}

function derive(dataKey: Buffer, fileIdBytes: Buffer, noncePrefix: Buffer, info: Buffer): Buffer {
  if (!Buffer.isBuffer(dataKey) || dataKey.length !== 32)
    throw new TypeError('dataKey must be a 32-byte Buffer');
  return Buffer.from(
    hkdfSync('sha256', secretKey(dataKey), Buffer.concat([fileIdBytes, noncePrefix]), info, 32),
  );
}

function context(header: Buffer, fields: StagingHeader, dataKey: Buffer): StagingContext {
  const fileIdBytes = header.subarray(10, 26);
  return {
    ...fields,
    header,
    headerHash: createHash('sha256').update(header).digest(),
    recordKey: derive(dataKey, fileIdBytes, fields.noncePrefix, INFO_RECORD_KEY),
  };
}

/** Serializes and authenticates a header; returns it with the derived record key. */
export function createStagingContext(fields: StagingHeader, dataKey: Buffer): StagingContext {
  assertRecordSize(fields.recordSize);
  if (!Buffer.isBuffer(fields.noncePrefix) || fields.noncePrefix.length !== NONCE_PREFIX_LENGTH) {
    throw new TypeError(`noncePrefix must be a ${NONCE_PREFIX_LENGTH}-byte Buffer`);
  }
  const fileIdBytes = fileIdToBytes(fields.fileId);
  const header = Buffer.alloc(STAGING_HEADER_LENGTH);
  STAGING_MAGIC.copy(header, 0);
  header.writeUInt8(STAGING_VERSION, 4);
  header.writeUInt8(STAGING_ALGORITHM, 5);
  header.writeUInt32BE(fields.recordSize, 6);
  fileIdBytes.copy(header, 10);
  fields.noncePrefix.copy(header, 26);
  const macKey = derive(dataKey, fileIdBytes, fields.noncePrefix, INFO_HEADER_MAC);
  createHmac('sha256', secretKey(macKey))
    .update(header.subarray(0, MAC_OFFSET))
    .digest()
    .copy(header, MAC_OFFSET);
  return context(header, fields, dataKey);
}

/** Reads the structure of a header without a key (no field is trustworthy yet). */
export function parseStagingHeader(header: Buffer): StagingHeader {
  if (header.length < STAGING_HEADER_LENGTH) {
    throw new StagingIntegrityError(
      'header-format',
      `the staging file is shorter than its ${STAGING_HEADER_LENGTH}-byte header`,
    );
  }
  if (!header.subarray(0, 4).equals(STAGING_MAGIC)) {
    throw new StagingIntegrityError('bad-magic', 'the staged upload is not a TESS staging file');
  }
  if (header[4] !== STAGING_VERSION || header[5] !== STAGING_ALGORITHM) {
    throw new StagingIntegrityError(
      'unsupported-version',
      `unsupported staging version ${header[4]}.${header[5]}`,
    );
  }
  const recordSize = header.readUInt32BE(6);
  if (recordSize < MIN_RECORD_SIZE || recordSize > MAX_RECORD_SIZE) {
    throw new StagingIntegrityError('header-format', `record size ${recordSize} is out of range`);
  }
  return {
    recordSize,
    fileId: fileIdFromBytes(header.subarray(10, 26)),
    noncePrefix: Buffer.from(header.subarray(26, 33)),
  };
}

/** Parses and authenticates a header under `dataKey`, and checks that it belongs to `fileId`. */
export function openStagingContext(header: Buffer, dataKey: Buffer, fileId: string): StagingContext {
  const bytes = Buffer.from(header.subarray(0, STAGING_HEADER_LENGTH));
  const fields = parseStagingHeader(bytes);
  const macKey = derive(dataKey, bytes.subarray(10, 26), fields.noncePrefix, INFO_HEADER_MAC);
  const mac = createHmac('sha256', secretKey(macKey)).update(bytes.subarray(0, MAC_OFFSET)).digest();
  if (!timingSafeEqual(mac, bytes.subarray(MAC_OFFSET))) {
    throw new StagingIntegrityError(
      'header-mac',
      'the staging header does not authenticate (edited, or another key)',
    );
  }
  if (fields.fileId !== fileId.toLowerCase()) {
    throw new StagingIntegrityError(
      'file-id',
      `the staging file belongs to file ${fields.fileId}, not ${fileId}`,
    );
  }
  return context(bytes, fields, dataKey);
}

export function recordHead(length: number, kind: RecordKind): Buffer {
  const head = Buffer.alloc(RECORD_HEAD_LENGTH);
  head.writeUInt32BE(length, 0);
  head.writeUInt8(kind, 4);
  return head;
}

function nonce(ctx: StagingContext, index: number, kind: RecordKind): Buffer {
  const out = Buffer.alloc(12);
  ctx.noncePrefix.copy(out, 0);
  out.writeUInt32BE(index, 7);
  out.writeUInt8(kind, 11);
  return out;
}

function aad(ctx: StagingContext, head: Buffer): Buffer {
  return Buffer.concat([ctx.headerHash, head]);
}

/** Encrypts one record from `pieces` (their total is the record length); returns its frame as buffers. */
export function sealRecord(ctx: StagingContext, index: number, kind: RecordKind, pieces: Buffer[]): Buffer[] {
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff)
    throw new RangeError('record index out of range');
  const length = pieces.reduce((sum, p) => sum + p.length, 0);
  const head = recordHead(length, kind);
  const cipher = createCipheriv('aes-256-gcm', secretKey(ctx.recordKey), nonce(ctx, index, kind), {
    authTagLength: 16,
  });
  cipher.setAAD(aad(ctx, head));
  const out = [head];
  for (const piece of pieces) {
    for (let at = 0; at < piece.length; at += PIECE) out.push(cipher.update(piece.subarray(at, at + PIECE)));
  }
  cipher.final();
  out.push(cipher.getAuthTag());
  return out;
}

/** The seal record's plaintext: the total length of the data records. */
export function sealPlaintext(total: number): Buffer {
  const out = Buffer.alloc(SEAL_PLAINTEXT_LENGTH);
  out.writeBigUInt64BE(BigInt(total));
  return out;
}

/**
 * Decrypts one record (`head` and `body` = ciphertext || tag) into `into` and verifies its tag. On failure
 * `into` is wiped and StagingIntegrityError('record-tag') thrown: unverified plaintext never leaves here.
 */
export function openRecord(
  ctx: StagingContext,
  index: number,
  head: Buffer,
  body: Buffer,
  into: Buffer,
): Buffer {
  const length = head.readUInt32BE(0);
  decryptRecord(
    ctx,
    index,
    head,
    body,
    (piece, offset) => copyBytes(piece, into, offset),
    () => into.fill(0, 0, length),
  );
  return into.subarray(0, length);
}

/**
 * Verifies one record's tag without keeping its plaintext (a resumed upload's last record, before
 * anything is appended to it): no buffer for the record, no copy. StagingIntegrityError('record-tag')
 * when it does not authenticate.
 */
export function verifyRecord(ctx: StagingContext, index: number, head: Buffer, body: Buffer): void {
  decryptRecord(
    ctx,
    index,
    head,
    body,
    () => undefined,
    () => undefined,
  );
}

function decryptRecord(
  ctx: StagingContext,
  index: number,
  head: Buffer,
  body: Buffer,
  take: (piece: Buffer, offset: number) => void,
  wipe: () => void,
): void {
  const length = head.readUInt32BE(0);
  const kind = head[4] as RecordKind;
  const decipher = createDecipheriv('aes-256-gcm', secretKey(ctx.recordKey), nonce(ctx, index, kind), {
    authTagLength: 16,
  });
  decipher.setAAD(aad(ctx, head));
  decipher.setAuthTag(body.subarray(length, length + RECORD_TAG_LENGTH));
  let offset = 0;
  for (let at = 0; at < length; at += PIECE) {
    const piece = decipher.update(body.subarray(at, Math.min(at + PIECE, length)));
    take(piece, offset);
    offset += piece.length;
    // Copied, or not needed: free it at once (util/release-buffer.ts says why that matters).
    releaseBuffer(piece);
  }
  try {
    decipher.final();
  } catch {
    wipe();
    throw new StagingIntegrityError(
      'record-tag',
      `staging record ${index} does not authenticate (edited, reordered, spliced or truncated)`,
      index,
    );
  }
}

/** Checks a frame head against the header; returns the record's length and kind. */
export function checkRecordHead(
  head: Buffer,
  recordSize: number,
  index: number,
): { length: number; kind: RecordKind } {
  const length = head.readUInt32BE(0);
  const kind = head[4];
  if (kind === RECORD_DATA && length >= 1 && length <= recordSize) return { length, kind };
  if (kind === RECORD_SEAL && length === SEAL_PLAINTEXT_LENGTH) return { length, kind };
  throw new StagingIntegrityError(
    'record-format',
    `staging record ${index} has an impossible frame (kind ${kind}, ${length} bytes)`,
    index,
  );
}

export function frameLength(length: number): number {
  return RECORD_HEAD_LENGTH + length + RECORD_TAG_LENGTH;
}
