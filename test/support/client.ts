import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FileEntity, FileStatus, TessConfig } from '#common';
import { type PartSpec, postMultipart } from './multipart.js';
import type { TestProcess } from './processes.js';
import type { TestUser } from './users.js';
import type { World } from './world.js';

/** The client side of a world: uploads through the API, polling rows and jobs, raw downloads. */

export interface UploadedFile {
  id: string;
  filename: string;
  size: number;
  status: string;
  jobId: string;
}

/** POST /api/v1/uploads with a bearer token, streamed; expects 202 and returns the accepted files. */
export async function upload(world: World, user: TestUser, parts: PartSpec[]): Promise<UploadedFile[]> {
  const res = await postMultipart(`${world.base}/api/v1/uploads`, parts, { headers: user.auth });
  if (res.status !== 202) throw new Error(`Upload answered ${res.status}: ${res.body}`);
  return (JSON.parse(res.body) as { files: UploadedFile[] }).files;
}

export interface WaitOptions {
  timeoutMs?: number;
  /** Their output is added to a timeout's message. */
  workers?: TestProcess[];
}

/**
 * Polls `probe` until it returns something other than undefined/null/false, or fails after `timeoutMs`
 * with what it was waiting for, the last value seen and the workers' output.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  options: WaitOptions & { intervalMs?: number; last?: () => unknown } = {},
): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      const last = options.last ? `\nlast seen: ${JSON.stringify(await options.last())}` : '';
      const outputs = (options.workers ?? [])
        .map(
          (w) => `\n--- ${w.name} (pid ${w.pid}, exit ${JSON.stringify(w.exitStatus())}) ---\n${w.output()}`,
        )
        .join('');
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last}${outputs}`);
    }
    await sleep(intervalMs);
  }
}

const FINAL: FileStatus[] = ['stored', 'failed', 'corrupt', 'rejected', 'infected'];
/** Final statuses a file still leaves: a stored file is marked corrupt when a read finds tampering. */
const LEAVES_TO: Partial<Record<FileStatus, FileStatus[]>> = { stored: ['corrupt'] };

/**
 * Waits until the file's row has `status`; fails at once, with the row's error, when it reaches a final
 * status it cannot leave for `status`.
 */
export async function waitForStatus(
  world: World,
  id: string,
  status: FileStatus,
  options: WaitOptions = {},
): Promise<FileEntity> {
  let row: FileEntity | null = null;
  return waitFor(
    `file ${id} to be ${status}`,
    async () => {
      row = await world.files.findById(id);
      if (
        row &&
        row.status !== status &&
        FINAL.includes(row.status) &&
        !LEAVES_TO[row.status]?.includes(status)
      ) {
        const outputs = (options.workers ?? []).map((w) => `\n--- ${w.name} ---\n${w.output()}`).join('');
        throw new Error(
          `file ${id} ended ${row.status} instead of ${status}: ${row.error ?? '(no error)'}${outputs}`,
        );
      }
      return row?.status === status ? row : undefined;
    },
    { ...options, last: () => (row ? { status: row.status, error: row.error } : null) },
  );
}

/**
 * Waits until the file's job (job id = file id) has finished in `state`: the worker's run is over, so
 * everything it does after committing the row (temp file removal, audit event) has happened too.
 */
export async function waitForJob(
  world: World,
  id: string,
  state: 'completed' | 'failed',
  options: WaitOptions = {},
): Promise<void> {
  let seen = 'missing';
  await waitFor(
    `job ${id} to be ${state}`,
    async () => {
      const job = await world.queue.getJob(id);
      seen = job ? await job.getState() : 'missing';
      if (seen === 'failed' && state !== 'failed') throw new Error(`job ${id} failed: ${job?.failedReason}`);
      return seen === state;
    },
    { ...options, last: () => seen },
  );
}

/** Waits until the file is stored and its job completed; returns the row. */
export async function waitForStored(
  world: World,
  id: string,
  options: WaitOptions = {},
): Promise<FileEntity> {
  const wait = { timeoutMs: 60_000, ...options };
  await waitForStatus(world, id, 'stored', wait);
  await waitForJob(world, id, 'completed', wait);
  return (await world.files.findById(id))!;
}

export async function userId(world: World, user: TestUser): Promise<string> {
  const row = await world.users.findByUsername(user.username);
  if (!row) throw new Error(`no user ${user.username}`);
  return row.id;
}

export async function tempFiles(config: TessConfig): Promise<string[]> {
  return readdir(config.tempDir).catch(() => []);
}

export async function auditCount(world: World, fileId: string, action: string): Promise<number> {
  const rows: Array<{ n: string }> = await world.dataSource.query(
    'SELECT count(*) AS n FROM audit_events WHERE file_id = $1 AND action = $2',
    [fileId, action],
  );
  return Number(rows[0]?.n ?? 0);
}

export interface RawDownload {
  /** 0 when the connection ended before a status line. */
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  bytes: number;
  sha256: string;
  /** The body ended cleanly with every byte the headers promised. */
  complete: boolean;
  error?: string;
}

/**
 * A raw HTTP request that reports an aborted body (or a connection cut before the status line) instead
 * of failing, hashes the body as it arrives and keeps it unless `keepBody` is false.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; keepBody?: boolean } = {},
): Promise<RawDownload> {
  const keep = options.keepBody ?? true;
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (result: Omit<RawDownload, 'body' | 'bytes' | 'sha256'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...result, body: Buffer.concat(chunks), bytes, sha256: hash.digest('hex') });
    };
    const req = http.request(url, {
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: false,
    });
    req.on('response', (res) => {
      let error: string | undefined;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        if (keep) chunks.push(chunk);
      });
      res.on('error', (e) => {
        error = e.message;
      });
      res.on('close', () => {
        const length = res.headers['content-length'];
        const complete = res.complete && (length === undefined || Number(length) === bytes);
        finish({ status: res.statusCode ?? 0, headers: res.headers, complete, error });
      });
    });
    req.on('error', (e) => finish({ status: 0, headers: {}, complete: false, error: e.message }));
    req.end();
  });
}

export function downloadContent(
  world: World,
  user: TestUser,
  id: string,
  headers: Record<string, string> = {},
): Promise<RawDownload> {
  return rawRequest(`${world.base}/api/v1/files/${id}/content`, { headers: { ...user.auth, ...headers } });
}
