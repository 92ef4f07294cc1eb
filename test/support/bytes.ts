import { createHash } from 'node:crypto';

export const MiB = 1024 * 1024;
export const SHA256_OF_NOTHING = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const SHA1_OF_NOTHING = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha1(data: Buffer | string): string {
  return createHash('sha1').update(data).digest('hex');
}
