import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  type ConfiguredKeyProvider,
  createObjectDecryptStream,
  type FileEntity,
  keyProviderFromConfig,
  type ObjectHeader,
  type TessConfig,
} from '#common';
import { MiB } from './bytes.js';
import type { S3rverHandle } from './s3rver.js';
import { objectKey, openStore, type World } from './world.js';

/** The stored objects, looked at behind the apps' backs the way an operator or an attacker would. */

/** Ciphertext segment size written by the worker (1 MiB). */
export const SEGMENT = MiB;
/** Plaintext bytes per segment (1 MiB - 16). */
export const P = SEGMENT - 16;
export const TAG = 16;

export interface DecryptedObject {
  sha256: string;
  bytes: number;
  encryptedSize: number;
  header: ObjectHeader;
}

/**
 * Reads the stored object through the configured object store and decrypts it with the library, unwrapping
 * the data key named by the header with the configured key provider (as a recovery from bucket + master key
 * would). Only the plaintext's SHA-256 and length are kept.
 */
export async function decryptStored(
  config: TessConfig,
  fileId: string,
  options: {
    keys?: ConfiguredKeyProvider;
    /** Unwrap the key the files row records instead of the one in the header (they must agree). */
    rowKey?: { keyRef: string; wrappedKey: Buffer };
  } = {},
): Promise<DecryptedObject> {
  const keys = options.keys ?? keyProviderFromConfig(config);
  const store = openStore(config);
  try {
    const key = objectKey(fileId);
    const found = await store.stat(key);
    if (!found) throw new Error(`No object ${key} in the ${store.driver} store`);
    const hash = createHash('sha256');
    let bytes = 0;
    const decrypt = createObjectDecryptStream({
      fileId,
      getDataKey: (header) =>
        keys.unwrapDataKey(
          fileId,
          options.rowKey ?? { keyRef: header.keyRef, wrappedKey: header.wrappedKey },
        ),
    });
    await pipeline(await store.getRange(key, 0), decrypt, async (plaintext: AsyncIterable<Buffer>) => {
      for await (const chunk of plaintext) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    });
    return { sha256: hash.digest('hex'), bytes, encryptedSize: found.size, header: decrypt.header! };
  } finally {
    await store.close();
  }
}

/** Header length `H` of a stored object, from its row: encryptedSize - size - 16 * segments. */
export function headerLength(row: Pick<FileEntity, 'size' | 'encryptedSize'>): number {
  const segments = Math.max(1, Math.ceil(row.size / P));
  return row.encryptedSize! - row.size - TAG * segments;
}

/**
 * A raw S3 client: on the proxy endpoint (requests are recorded and may be faulted), or with
 * `direct` on s3rver itself (unseen by the proxy).
 */
export function s3Client(s3: S3rverHandle, options: { direct?: boolean } = {}): S3Client {
  return new S3Client({
    endpoint: options.direct ? s3.s3rverEndpoint : s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Keys of the open multipart uploads under `prefix` (served by the proxy, since s3rver lacks the call). */
export async function openMultipartUploads(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

/** Object keys under `prefix`. */
export async function objectKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

export async function objectETag(client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return out.ETag;
}

/** Parts that reached s3rver's disk (`._S3rver_uploads/<uploadId>/<n>.md5` is written once part n is whole). */
export async function partsOnS3rver(s3: S3rverHandle): Promise<number> {
  const uploads = join(s3.directory, s3.bucket, '._S3rver_uploads');
  let count = 0;
  for (const id of await readdir(uploads).catch(() => [] as string[])) {
    const entries = await readdir(join(uploads, id)).catch(() => [] as string[]);
    count += entries.filter((entry) => /^\d+\.md5$/.test(entry)).length;
  }
  return count;
}

export function localObjectPath(world: World, id: string): string {
  return join(world.config.dataDir, objectKey(id));
}

async function withDirectClient<T>(world: World, use: (client: S3Client, bucket: string) => Promise<T>) {
  const client = s3Client(world.s3!, { direct: true });
  try {
    return await use(client, world.s3!.bucket);
  } finally {
    client.destroy();
  }
}

/** The encrypted object's bytes (local file or s3rver object). */
export async function readObject(world: World, id: string): Promise<Buffer> {
  if (world.kind === 'local') return readFile(localObjectPath(world, id));
  return withDirectClient(world, async (client, bucket) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(id) }));
    return Buffer.from(await out.Body!.transformToByteArray());
  });
}

/** Replaces the encrypted object (local: rewrite the file; s3: PutObject straight to s3rver). */
export async function writeObject(world: World, id: string, bytes: Buffer): Promise<void> {
  if (world.kind === 'local') {
    await writeFile(localObjectPath(world, id), bytes);
    return;
  }
  await withDirectClient(world, (client, bucket) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey(id), Body: bytes })),
  );
}

export async function objectExists(world: World, id: string): Promise<boolean> {
  if (world.kind === 'local') {
    return stat(localObjectPath(world, id)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
  }
  return withDirectClient(world, async (client, bucket) => {
    try {
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(id) }));
      return true;
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false;
      throw error;
    }
  });
}

/**
 * Every file object key in the store (`objects/`; local: files under DATA_DIR/objects, temp names
 * included). The audit anchors the workers write (`audit-anchors/`) are not file objects.
 */
export async function listObjects(world: World): Promise<string[]> {
  if (world.kind === 'local') {
    const names = await readdir(join(world.config.dataDir, 'objects')).catch(() => []);
    return names.map((name) => `objects/${name}`).sort();
  }
  return withDirectClient(world, async (client, bucket) =>
    (await objectKeys(client, bucket, 'objects/')).sort(),
  );
}
