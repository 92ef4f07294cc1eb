import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type S3rverHandle, startS3rver } from '../../../../../test/support/s3rver.js';
import { createObjectStore } from '../index.js';
import {
  chunkedBody,
  describeObjectStoreContract,
  newKey,
  PART,
  readAll,
  sha256,
} from '../object-store.contract.js';
import {
  choosePartSize,
  isRetryableS3Error,
  S3_MAX_PARTS,
  S3ObjectStore,
  type S3ObjectStoreOptions,
  S3UploadError,
} from './index.js';

let s3: S3rverHandle;
let store: S3ObjectStore;
let client: S3Client;
const stores: S3ObjectStore[] = [];

function makeStore(overrides: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore {
  const created = new S3ObjectStore({
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3.credentials,
    partSize: PART,
    queueSize: 4,
    maxAttempts: 4,
    baseDelayMs: 5,
    maxDelayMs: 50,
    ...overrides,
  });
  stores.push(created);
  return created;
}

async function uploadsFor(key: string): Promise<string[]> {
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: key }));
  return (listed.Uploads ?? []).filter((upload) => upload.Key === key).map((upload) => upload.UploadId ?? '');
}

/** s3rver's own record of unfinished uploads, independent of the proxy's emulation. */
async function uploadDirectories(): Promise<string[]> {
  return readdir(join(s3.directory, s3.bucket, '._S3rver_uploads')).catch(() => []);
}

beforeAll(async () => {
  s3 = await startS3rver();
  store = makeStore();
  client = new S3Client({ ...S3ObjectStore.clientConfig(makeStoreOptions()), maxAttempts: 1 });
});

function makeStoreOptions(): S3ObjectStoreOptions {
  return {
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3.credentials,
  };
}

afterEach(() => {
  s3.proxy.clear();
  s3.proxy.resetStats();
});

afterAll(async () => {
  for (const created of stores) await created.close();
  client?.destroy();
  await s3?.close();
});

describeObjectStoreContract('S3ObjectStore', () => store);

describe('S3ObjectStore', () => {
  it('sends objects of one part or more as multipart uploads of 5 MiB parts, smaller ones as PutObject', async () => {
    await store.put(newKey(), chunkedBody(randomBytes(PART - 1)));
    expect(s3.proxy.stats('PutObject').requests).toBe(1);
    expect(s3.proxy.stats('CreateMultipartUpload').requests).toBe(0);

    await store.put(newKey(), chunkedBody(randomBytes(3 * PART + 3)));
    expect(s3.proxy.stats('CreateMultipartUpload').requests).toBe(1);
    expect(s3.proxy.stats('UploadPart').requests).toBe(4);
    expect(s3.proxy.stats('CompleteMultipartUpload').requests).toBe(1);
    expect(await uploadDirectories()).toEqual([]);
  });

  it('signs every request body with the SHA-256 that options.sha256 computed, and S3 checks it', async () => {
    const given: Buffer[] = [];
    const options = {
      sha256: async (bytes: Buffer) => {
        given.push(bytes);
        return sha256(bytes);
      },
    };
    const data = randomBytes(2 * PART + 5);
    const key = newKey();
    await store.put(key, chunkedBody(data), options);
    const small = randomBytes(1000);
    const smallKey = newKey();
    await store.put(smallKey, chunkedBody(small), options);

    const signed = s3.proxy.requests.filter((r) => r.method === 'PUT').map((r) => r.payloadHash);
    expect(signed).toHaveLength(4);
    // Parts go in parallel: compare as sets. The proxy refuses a body that does not match its hash.
    expect(new Set(signed)).toEqual(new Set(given.map((bytes) => sha256(bytes))));
    expect(given.map((bytes) => bytes.length).sort((a, b) => a - b)).toEqual([5, 1000, PART, PART]);
    // Another thread reads them in place.
    expect(given.every((bytes) => bytes.buffer instanceof SharedArrayBuffer)).toBe(true);
    expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(data));
    expect(sha256(await readAll(await store.getRange(smallKey, 0)))).toBe(sha256(small));
  });

  it('reads a body its size hint puts below one part into a buffer of that size, and one longer than its hint whole', async () => {
    const given: Buffer[] = [];
    const record = async (bytes: Buffer) => {
      given.push(bytes);
      return sha256(bytes);
    };
    const small = randomBytes(1000);
    const smallKey = newKey();
    await store.put(smallKey, chunkedBody(small), { size: small.length, sha256: record });
    expect(given.map((bytes) => bytes.buffer.byteLength)).toEqual([small.length + 1]);
    expect(sha256(await readAll(await store.getRange(smallKey, 0)))).toBe(sha256(small));

    // A hint that is too small costs a copy, never bytes.
    for (const length of [3000, PART + 7]) {
      const data = randomBytes(length);
      const key = newKey();
      await store.put(key, chunkedBody(data), { size: 100 });
      expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(data));
    }
    expect(s3.proxy.stats('PutObject').requests).toBe(2);
    expect(s3.proxy.stats('UploadPart').requests).toBe(2);
  });

  it('fails and aborts the upload when S3 refuses a part that does not match its signed SHA-256', async () => {
    const key = newKey();
    const wrong = async () => '0'.repeat(64);
    await expect(store.put(key, chunkedBody(randomBytes(2 * PART)), { sha256: wrong })).rejects.toThrow(
      /XAmzContentSHA256Mismatch|does not match/,
    );
    expect(s3.proxy.stats('UploadPart').requests).toBeGreaterThan(0);
    expect(await store.stat(key)).toBeNull();
    expect(await uploadDirectories()).toEqual([]);
  });

  it('fails and aborts the upload when hashing a part fails', async () => {
    const key = newKey();
    const broken = async () => {
      throw new Error('hash thread gone');
    };
    await expect(store.put(key, chunkedBody(randomBytes(2 * PART)), { sha256: broken })).rejects.toThrow(
      /hash thread gone/,
    );
    expect(await store.stat(key)).toBeNull();
    expect(await uploadDirectories()).toEqual([]);
  });

  it('keeps at most queueSize parts in flight', async () => {
    const narrow = makeStore({ queueSize: 2 });
    s3.proxy.delay('UploadPart', 150);
    const data = randomBytes(6 * PART + 1);
    const key = newKey();
    await narrow.put(key, chunkedBody(data));
    const parts = s3.proxy.stats('UploadPart');
    expect(parts.requests).toBe(7);
    expect(parts.maxConcurrent).toBeLessThanOrEqual(2);
    expect(parts.maxConcurrent).toBe(2);
    expect(sha256(await readAll(await narrow.getRange(key, 0)))).toBe(sha256(data));
  });

  it('retries an UploadPart answered with 503 and stores the exact bytes', async () => {
    s3.proxy.inject({ operation: 'UploadPart', respond: 503, times: 1 });
    const data = randomBytes(3 * PART + 3);
    const key = newKey();
    await store.put(key, chunkedBody(data));
    expect(s3.proxy.stats('UploadPart')).toMatchObject({ requests: 5, injected: 1 });
    expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(data));
    expect(await uploadsFor(key)).toEqual([]);
  });

  it('retries an UploadPart whose connection was reset', async () => {
    s3.proxy.inject({ operation: 'UploadPart', respond: 'reset', times: 2 });
    const data = randomBytes(2 * PART);
    const key = newKey();
    await store.put(key, chunkedBody(data));
    expect(s3.proxy.stats('UploadPart')).toMatchObject({ requests: 4, injected: 2 });
    expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(data));
  });

  it('retries a small PutObject answered with 500', async () => {
    s3.proxy.inject({ operation: 'PutObject', respond: 500, times: 2 });
    const data = randomBytes(1000);
    const key = newKey();
    await store.put(key, chunkedBody(data));
    expect(s3.proxy.stats('PutObject')).toMatchObject({ requests: 3, injected: 2 });
    expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(data));
  });

  it('on persistent 500s: aborts the multipart upload and rejects naming the part, attempts and cause', async () => {
    s3.proxy.inject({ operation: 'UploadPart', respond: 500 });
    const key = newKey();
    const body = chunkedBody(randomBytes(3 * PART + 3));
    const error = await store.put(key, body).then(
      () => null,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(S3UploadError);
    const failure = error as S3UploadError;
    expect(failure.message).toMatch(
      new RegExp(
        `^S3 upload of ${key} to bucket ${s3.bucket} failed at UploadPart \\d after 4 attempts: ` +
          'InternalError \\(HTTP 500\\): Injected fault: HTTP 500; the multipart upload was aborted$',
      ),
    );
    expect(failure.details).toMatchObject({ stage: 'upload-part', attempts: 4, key });
    expect(failure.details.uploadId).toBeTruthy();
    expect(body.destroyed).toBe(true);
    expect(s3.proxy.stats('AbortMultipartUpload').requests).toBe(1);
    expect(s3.proxy.stats('CompleteMultipartUpload').requests).toBe(0);
    expect(await uploadsFor(key)).toEqual([]);
    expect(await uploadDirectories()).toEqual([]);
    expect(await store.stat(key)).toBeNull();
  });

  it('does not retry errors that retrying cannot fix (403)', async () => {
    s3.proxy.inject({ operation: 'UploadPart', respond: 403 });
    const key = newKey();
    await expect(store.put(key, chunkedBody(randomBytes(PART + 1)))).rejects.toThrow(
      /failed at UploadPart \d after 1 attempt: AccessDenied \(HTTP 403\)/,
    );
    expect(await uploadsFor(key)).toEqual([]);
  });

  it('reports a failed CompleteMultipartUpload and aborts the upload', async () => {
    s3.proxy.inject({ operation: 'CompleteMultipartUpload', respond: 400 });
    const key = newKey();
    await expect(store.put(key, chunkedBody(randomBytes(PART + 1)))).rejects.toThrow(
      /failed at CompleteMultipartUpload after 1 attempt: BadRequest \(HTTP 400\)/,
    );
    expect(await uploadsFor(key)).toEqual([]);
    expect(await store.stat(key)).toBeNull();
  });

  it('treats NoSuchUpload after a lost CompleteMultipartUpload answer as success when the object is there', async () => {
    s3.proxy.inject({ operation: 'CompleteMultipartUpload', respond: 500, times: 1, afterForwarding: true });
    const data = randomBytes(PART + 5);
    const key = newKey();
    await expect(store.put(key, chunkedBody(data))).resolves.toEqual({ size: data.length });
    expect(s3.proxy.stats('CompleteMultipartUpload').requests).toBe(2);
    expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(data));
  });

  it('names the AbortMultipartUpload failure and how to clean up when the abort fails too', async () => {
    s3.proxy.inject({ operation: 'UploadPart', respond: 500 });
    s3.proxy.inject({ operation: 'AbortMultipartUpload', respond: 403 });
    const key = newKey();
    const error = await store.put(key, chunkedBody(randomBytes(PART + 1))).then(
      () => null,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(S3UploadError);
    expect((error as Error).message).toMatch(
      /AbortMultipartUpload \w+ also failed \(AccessDenied \(HTTP 403\).*run abortIncomplete\("objects\/[0-9a-f-]+"\)/,
    );
    s3.proxy.clear();
    expect(await store.abortIncomplete(key)).toBe(1);
    expect(await uploadsFor(key)).toEqual([]);
  });

  it('aborted mid-upload: no multipart upload and no object remain', async () => {
    s3.proxy.delay('UploadPart', 100);
    const key = newKey();
    const controller = new AbortController();
    const put = store.put(key, chunkedBody(randomBytes(8 * PART)), {
      signal: controller.signal,
      // Part 1 is done, parts 2-5 are in flight.
      onProgress: () => controller.abort(),
    });
    await expect(put).rejects.toMatchObject({ name: 'AbortError' });
    expect(s3.proxy.stats('UploadPart').requests).toBeLessThanOrEqual(5);
    expect(s3.proxy.stats('AbortMultipartUpload').requests).toBe(1);
    expect(s3.proxy.stats('CompleteMultipartUpload').requests).toBe(0);
    expect(await uploadsFor(key)).toEqual([]);
    expect(await uploadDirectories()).toEqual([]);
    expect(await store.stat(key)).toBeNull();
  });

  it('abortIncomplete aborts uploads left by a crashed writer for exactly that key', async () => {
    const key = newKey();
    const sibling = `${key}-sibling`;
    for (const target of [key, key, sibling]) {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: target }));
      await client.send(
        new UploadPartCommand({
          Bucket: s3.bucket,
          Key: target,
          UploadId: created.UploadId,
          PartNumber: 1,
          Body: randomBytes(PART),
        }),
      );
    }
    expect(await uploadsFor(key)).toHaveLength(2);
    expect(await store.abortIncomplete(key)).toBe(2);
    expect(await uploadsFor(key)).toEqual([]);
    expect(await uploadsFor(sibling)).toHaveLength(1);
    expect(await store.abortIncomplete(key)).toBe(0);
    expect(await store.abortIncomplete(sibling)).toBe(1);
    expect(await uploadDirectories()).toEqual([]);
  });

  it('retries reads answered with 503', async () => {
    const data = randomBytes(100);
    const key = newKey();
    await store.put(key, chunkedBody(data));
    s3.proxy.inject({ operation: 'GetObject', respond: 503, times: 1 });
    s3.proxy.inject({ operation: 'HeadObject', respond: 503, times: 1 });
    expect(await store.stat(key)).toEqual({ size: 100 });
    expect(sha256(await readAll(await store.getRange(key, 10, 19)))).toBe(sha256(data.subarray(10, 20)));
  });

  it('check fails with a readable message for a missing bucket or an unreachable endpoint', async () => {
    await expect(makeStore({ bucket: 'no-such-bucket' }).check()).rejects.toThrow(
      /S3 bucket no-such-bucket is not usable \(bucket does not exist\)/,
    );
    const unreachable = makeStore({ endpoint: 'http://127.0.0.1:1', maxAttempts: 2 });
    await expect(unreachable.check()).rejects.toThrow(/is not usable: .*ECONNREFUSED.*after 2 attempts/);
  });

  it('stores bytes unaltered with the SDK checksum settings (s3rver corrupts aws-chunked bodies)', async () => {
    const key = newKey();
    const data = randomBytes(PART + 1);
    await store.put(key, chunkedBody(data));
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    expect(head.ContentLength).toBe(data.length);
    expect(S3ObjectStore.clientConfig(makeStoreOptions())).toMatchObject({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      forcePathStyle: true,
    });
  });

  it('is built by createObjectStore', async () => {
    const built = createObjectStore({ driver: 's3', ...makeStoreOptions() });
    expect(built.driver).toBe('s3');
    expect(built).toBeInstanceOf(S3ObjectStore);
    await built.close();
    expect(createObjectStore({ driver: 'local', root: '/tmp/x' }).driver).toBe('local');
  });

  it('rejects part sizes S3 would refuse', () => {
    expect(() => makeStoreOptionsWith({ partSize: PART - 1 })).toThrow(/from 5 MiB to 5 GiB/);
    expect(() => makeStoreOptionsWith({ queueSize: 0 })).toThrow(/queueSize must be a positive integer/);
  });
});

function makeStoreOptionsWith(overrides: Partial<S3ObjectStoreOptions>): S3ObjectStore {
  return new S3ObjectStore({ ...makeStoreOptions(), ...overrides });
}

describe('choosePartSize', () => {
  it('keeps the configured size while 10,000 parts suffice', () => {
    expect(choosePartSize(PART)).toBe(PART);
    expect(choosePartSize(PART, PART * S3_MAX_PARTS)).toBe(PART);
  });

  it('grows to a whole number of MiB so the object fits in 10,000 parts', () => {
    const size = PART * S3_MAX_PARTS + 1;
    const grown = choosePartSize(PART, size);
    expect(grown).toBe(6 * 1024 * 1024);
    expect(Math.ceil(size / grown)).toBeLessThanOrEqual(S3_MAX_PARTS);
    expect(choosePartSize(PART, 1024 ** 4)).toBeGreaterThanOrEqual(Math.ceil(1024 ** 4 / S3_MAX_PARTS));
  });

  it('refuses objects beyond S3 limits', () => {
    expect(() => choosePartSize(PART, 6 * 1024 ** 4 * 10)).toThrow(RangeError);
  });
});

describe('isRetryableS3Error', () => {
  const withStatus = (name: string, status: number): Error =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  it.each([
    ['InternalError 500', withStatus('InternalError', 500), true],
    ['ServiceUnavailable 503', withStatus('ServiceUnavailable', 503), true],
    ['SlowDown 503', withStatus('SlowDown', 503), true],
    ['429', withStatus('TooManyRequests', 429), true],
    ['ECONNRESET', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    [
      'wrapped ECONNREFUSED',
      new Error('x', { cause: Object.assign(new Error('y'), { code: 'ECONNREFUSED' }) }),
      true,
    ],
    ['AccessDenied 403', withStatus('AccessDenied', 403), false],
    ['NoSuchBucket 404', withStatus('NoSuchBucket', 404), false],
    ['NoSuchUpload 404', withStatus('NoSuchUpload', 404), false],
    ['a string', 'boom', false],
  ])('%s -> %s', (_label, error, expected) => {
    expect(isRetryableS3Error(error)).toBe(expected);
  });
});
