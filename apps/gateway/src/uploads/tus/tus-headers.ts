import { BadRequestException } from '@nestjs/common';

/** The tus protocol version TESS speaks (https://tus.io/protocols/resumable-upload, 1.0.0). */
export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'termination',
  'expiration',
  'checksum',
] as const;
/** Checksum algorithms a PATCH may name in `Upload-Checksum` (node:crypto hash names). */
export const TUS_CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const;
export type TusChecksumAlgorithm = (typeof TUS_CHECKSUM_ALGORITHMS)[number];
export const TUS_CONTENT_TYPE = 'application/offset+octet-stream';

const DIGITS = /^\d{1,16}$/;
/** Upload-Metadata keys: ASCII, no spaces or commas (the spec), kept short here. */
const META_KEY = /^[!-+\--~]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A non-negative integer header (`Upload-Length`, `Upload-Offset`), or a 400 that names it. */
export function parseByteCount(value: string | undefined, name: string): number {
  if (value === undefined || !DIGITS.test(value.trim())) {
    throw new BadRequestException(`${name} must be a non-negative integer number of bytes.`);
  }
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw new BadRequestException(`${name} is too large.`);
  return n;
}

/**
 * `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent). Keys must be
 * unique; values are decoded as UTF-8. Anything else is a 400 saying what is wrong.
 */
export function parseMetadata(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined || header.trim() === '') return out;
  if (header.length > 8192) throw new BadRequestException('Upload-Metadata is longer than 8192 characters.');
  for (const pair of header.split(',')) {
    const parts = pair.trim().split(' ');
    const [key, value = '', ...rest] = parts;
    if (!key || !META_KEY.test(key) || rest.length) {
      throw new BadRequestException(
        'Upload-Metadata must be comma-separated "key base64value" pairs with ASCII keys without spaces or commas.',
      );
    }
    if (out.has(key)) throw new BadRequestException(`Upload-Metadata names "${key}" twice.`);
    if (!BASE64.test(value)) {
      throw new BadRequestException(`Upload-Metadata "${key}" is not base64.`);
    }
    out.set(key, Buffer.from(value, 'base64').toString('utf8'));
  }
  return out;
}

/** The `Upload-Metadata` header for stored values (HEAD must repeat an upload's metadata). */
export function formatMetadata(values: Record<string, string | null | undefined>): string {
  return Object.entries(values)
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string')
    .map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',');
}

/** `Upload-Checksum: <algorithm> <base64 digest>`; 400 for an unsupported algorithm or a malformed digest. */
export function parseChecksum(
  header: string | undefined,
): { algorithm: TusChecksumAlgorithm; digest: Buffer } | null {
  if (header === undefined) return null;
  const [algorithm, value, ...rest] = header.trim().split(' ');
  if (!TUS_CHECKSUM_ALGORITHMS.includes(algorithm as TusChecksumAlgorithm)) {
    throw new BadRequestException(
      `Upload-Checksum names an unsupported algorithm; use one of ${TUS_CHECKSUM_ALGORITHMS.join(', ')}.`,
    );
  }
  if (!value || rest.length || !BASE64.test(value)) {
    throw new BadRequestException('Upload-Checksum must be "<algorithm> <base64 digest>".');
  }
  return { algorithm: algorithm as TusChecksumAlgorithm, digest: Buffer.from(value, 'base64') };
}

/**
 * `Tess-Upload-Sha256` (a TESS header, not tus): the SHA-256 of the whole file, in hex, declared on a PATCH
 * by a client that learns it only while uploading (the dashboard). Absent: null; malformed: 400.
 */
export const SHA256_HEADER = 'Tess-Upload-Sha256';

export function parseDeclaredSha256(header: string | undefined): string | null {
  if (header === undefined) return null;
  const value = header.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new BadRequestException(
      `${SHA256_HEADER} must be 64 hexadecimal characters (the SHA-256 of the whole file).`,
    );
  }
  return value;
}
