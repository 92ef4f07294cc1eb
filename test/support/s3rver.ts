import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type S3FaultProxy, startS3FaultProxy } from './s3-proxy.js';

/** The part of s3rver 3.7.1's API used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: Array<{ name: string; configs: Array<string | Buffer> }>;
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export interface S3rverHandle {
  /**
   * Endpoint for clients: the fault proxy in front of s3rver, which also serves ListMultipartUploads and
   * AbortMultipartUpload (s3rver 3.7.1 lacks both). Use with `forcePathStyle: true`.
   */
  endpoint: string;
  /** s3rver itself, without the proxy. */
  s3rverEndpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** s3rver's data directory (fresh per instance, removed by close). */
  directory: string;
  proxy: S3FaultProxy;
  close(): Promise<void>;
}

/** Starts s3rver on a random loopback port with a fresh directory and one bucket, plus the fault proxy. */
export async function startS3rver(options: { bucket?: string } = {}): Promise<S3rverHandle> {
  const bucket = options.bucket ?? 'tess-test';
  if (bucket.length < 3) throw new Error('s3rver needs bucket names of at least 3 characters');
  const directory = await mkdtemp(join(tmpdir(), 'tess-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const address = await server.run();
  const s3rverEndpoint = `http://127.0.0.1:${address.port}`;
  const proxy = await startS3FaultProxy({ target: s3rverEndpoint, directory });
  return {
    endpoint: proxy.endpoint,
    s3rverEndpoint,
    bucket,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    directory,
    proxy,
    async close() {
      await proxy.close();
      server.httpServer?.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
