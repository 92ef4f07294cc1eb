import type { Server } from 'node:http';
import type { Readable } from 'node:stream';
import request from 'supertest';
import * as tus from 'tus-js-client';
import { expect } from 'vitest';
import type { TestUser } from './users.js';

export const TUS = { 'Tus-Resumable': '1.0.0' };

export interface TusResult {
  id: string;
  url: string;
}

export interface TusUploadOptions {
  chunkSize?: number;
  metadata?: Record<string, string>;
  onProgress?: (sent: number, total: number) => void;
  /** Resume this upload URL instead of creating one. */
  uploadUrl?: string;
  uploadDataDuringCreation?: boolean;
  /** Abort (without terminating) once this many bytes were acknowledged. */
  abortAfter?: number;
  /** Abort (without terminating) in the middle of a chunk, once this many bytes were sent. */
  abortWhileSending?: number;
}

/** Uploads `body` with the third-party tus client (tus-js-client, Node HTTP stack) to `base`. */
export function tusUpload(
  base: string,
  user: TestUser,
  body: Buffer | Readable,
  options: TusUploadOptions = {},
): Promise<TusResult & { aborted: boolean }> {
  return new Promise((resolve, reject) => {
    let aborted = false;
    const upload: tus.Upload = new tus.Upload(body, {
      endpoint: `${base}/api/v1/tus`,
      uploadUrl: options.uploadUrl ?? null,
      headers: user.auth,
      chunkSize: options.chunkSize ?? 8 * 1024 * 1024,
      metadata: options.metadata ?? { filename: 'tus.bin', filetype: 'application/octet-stream' },
      uploadDataDuringCreation: options.uploadDataDuringCreation ?? false,
      retryDelays: [0, 200, 500],
      onChunkComplete: (_chunk, accepted) => {
        if (options.abortAfter !== undefined && accepted >= options.abortAfter && !aborted) {
          aborted = true;
          void upload.abort(false).then(() => resolve({ ...idOf(upload.url!), aborted: true }));
        }
      },
      onProgress: (sent, total) => {
        options.onProgress?.(sent, total);
        if (options.abortWhileSending !== undefined && sent >= options.abortWhileSending && !aborted) {
          aborted = true;
          void upload.abort(false).then(() => resolve({ ...idOf(upload.url!), aborted: true }));
        }
      },
      onSuccess: () => resolve({ ...idOf(upload.url!), aborted: false }),
      onError: (error) => reject(error),
    });
    upload.start();
  });
}

function idOf(url: string): TusResult {
  return { url, id: url.split('/').pop()! };
}

/** Raw tus requests (supertest) against `server()` (a world made in beforeAll): the protocol request by request. */
export function tusRequests(server: () => Server) {
  return {
    /** POST with Upload-Length; expects 201 and returns the upload id. */
    async create(user: TestUser, length: number, headers: Record<string, string> = {}): Promise<string> {
      const res = await request(server())
        .post('/api/v1/tus')
        .set({ ...user.auth, ...TUS, 'Upload-Length': String(length), ...headers });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.headers.location!.split('/').pop()!;
    },
    patch(user: TestUser, id: string, offset: number, body: Buffer, headers: Record<string, string> = {}) {
      return request(server())
        .patch(`/api/v1/tus/${id}`)
        .set({
          ...user.auth,
          ...TUS,
          'Upload-Offset': String(offset),
          'Content-Type': 'application/offset+octet-stream',
          ...headers,
        })
        .send(body);
    },
    head(user: TestUser, id: string) {
      return request(server())
        .head(`/api/v1/tus/${id}`)
        .set({ ...user.auth, ...TUS });
    },
  };
}
