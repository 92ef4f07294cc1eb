import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The one test-only HTTP proxy in front of s3rver. It
 * - records every request (method, path, Range header, status and answered body bytes);
 * - injects faults per S3 operation (HTTP errors, connection resets, delays), and counts requests;
 * - serves ListMultipartUploads and AbortMultipartUpload, which s3rver 3.7.1 answers with 501/405, from
 *   s3rver's own upload directories (`<dir>/<bucket>/._S3rver_uploads/<uploadId>/key`);
 * - answers UploadPart/CompleteMultipartUpload for an unknown upload id with 404 NoSuchUpload like S3
 *   (s3rver would silently re-create the upload directory);
 * - checks a signed payload hash like S3 (s3rver does not): a body whose SHA-256 is not the hex
 *   x-amz-content-sha256 it was signed with is answered 400 XAmzContentSHA256Mismatch, not stored.
 * Path-style requests only (`forcePathStyle: true`).
 */

export type S3Operation =
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'PutObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'HeadBucket'
  | 'Other';

export interface S3Fault {
  operation: S3Operation;
  /** HTTP status answered with an S3 XML error, or `reset` to drop the connection. */
  respond: number | 'reset';
  /** How many matching requests get the fault (default: all, until cleared). */
  times?: number;
  /** Forward to s3rver first (so the operation takes effect) and then answer with the fault. */
  afterForwarding?: boolean;
}

export interface S3OperationStats {
  requests: number;
  injected: number;
  /** Highest number of requests of this operation being served at the same time. */
  maxConcurrent: number;
}

/** One request seen by the proxy. */
export interface RecordedS3Request {
  method: string;
  path: string;
  range: string | undefined;
  status: number;
  /** Body bytes the proxy answered with. */
  bytes: number;
  /** The x-amz-content-sha256 the request was signed with (a hex SHA-256, or e.g. UNSIGNED-PAYLOAD). */
  payloadHash: string | undefined;
}

export interface S3FaultProxy {
  endpoint: string;
  /** Every request, in arrival order (cleared by `resetStats`). */
  requests: RecordedS3Request[];
  inject(fault: S3Fault): void;
  /** Holds matching requests for `ms` before serving them (makes parallelism observable). */
  delay(operation: S3Operation, ms: number): void;
  /** Removes all faults and delays. */
  clear(): void;
  stats(operation: S3Operation): S3OperationStats;
  resetStats(): void;
  close(): Promise<void>;
}

interface ParsedRequest {
  operation: S3Operation;
  bucket: string;
  key: string;
  query: URLSearchParams;
}

const ERROR_CODES: Record<number, string> = {
  400: 'BadRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  429: 'SlowDown',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

export async function startS3FaultProxy(options: {
  target: string;
  /** s3rver's data directory. */
  directory: string;
}): Promise<S3FaultProxy> {
  const target = new URL(options.target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const faults: Array<S3Fault & { remaining: number }> = [];
  const delays = new Map<S3Operation, number>();
  const stats = new Map<S3Operation, S3OperationStats & { current: number }>();
  const requests: RecordedS3Request[] = [];
  /** UploadParts on their way through s3rver, by upload id: an abort waits for them (see below). */
  const partsInFlight = new Map<string, Set<Promise<void>>>();

  const statsOf = (operation: S3Operation): S3OperationStats & { current: number } => {
    let entry = stats.get(operation);
    if (!entry) {
      entry = { requests: 0, injected: 0, maxConcurrent: 0, current: 0 };
      stats.set(operation, entry);
    }
    return entry;
  };

  const uploadsDir = (bucket: string): string => join(options.directory, bucket, '._S3rver_uploads');

  const uploadKey = async (bucket: string, uploadId: string): Promise<string | null> => {
    if (!/^[0-9a-f]{8,64}$/.test(uploadId)) return null;
    try {
      return await readFile(join(uploadsDir(bucket), uploadId, 'key'), 'utf8');
    } catch {
      return null;
    }
  };

  const takeFault = (operation: S3Operation): S3Fault | undefined => {
    const index = faults.findIndex((fault) => fault.operation === operation && fault.remaining > 0);
    if (index < 0) return undefined;
    const fault = faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faults.splice(index, 1);
    return fault;
  };

  /** Records the request; its status is the one answered, its bytes those relayed from s3rver. */
  const record = (req: IncomingMessage, res: ServerResponse): RecordedS3Request => {
    const entry: RecordedS3Request = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      range: req.headers.range,
      status: 0,
      bytes: 0,
      payloadHash: header(req, 'x-amz-content-sha256'),
    };
    requests.push(entry);
    res.on('finish', () => {
      entry.status ||= res.statusCode;
    });
    return entry;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const recorded = record(req, res);
    const parsed = parse(req);
    const entry = statsOf(parsed.operation);
    entry.requests += 1;
    entry.current += 1;
    entry.maxConcurrent = Math.max(entry.maxConcurrent, entry.current);
    let clientGone = false;
    res.on('close', () => {
      entry.current -= 1;
      if (!res.writableEnded) clientGone = true;
    });

    const wait = delays.get(parsed.operation);
    if (wait) await sleep(wait);
    // A client that gave up (aborted upload) must not have its request executed later.
    if (clientGone) return;

    const fault = takeFault(parsed.operation);
    if (fault) entry.injected += 1;
    if (fault && !fault.afterForwarding) {
      await drain(req);
      answerFault(res, fault);
      return;
    }

    if (parsed.operation === 'ListMultipartUploads') {
      await drain(req);
      await listUploads(res, parsed);
      return;
    }
    if (parsed.operation === 'AbortMultipartUpload') {
      await drain(req);
      const uploadId = parsed.query.get('uploadId') ?? '';
      // As in S3, an abort is final: a part s3rver is still writing would re-create the upload's directory
      // after it was removed, so the parts in flight finish first.
      await Promise.all(partsInFlight.get(uploadId) ?? []);
      if ((await uploadKey(parsed.bucket, uploadId)) !== parsed.key) {
        sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        return;
      }
      await rm(join(uploadsDir(parsed.bucket), uploadId), { recursive: true, force: true });
      res.writeHead(204).end();
      return;
    }
    if (parsed.operation === 'UploadPart' || parsed.operation === 'CompleteMultipartUpload') {
      const uploadId = parsed.query.get('uploadId') ?? '';
      if ((await uploadKey(parsed.bucket, uploadId)) !== parsed.key) {
        await drain(req);
        sendError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        return;
      }
    }
    const body = await signedBody(req, recorded);
    // Reading the body took time: a client that gave up meanwhile must not have its request executed (a part
    // stored after the upload's abort would re-create the upload's directory in s3rver).
    if (clientGone) return;
    if (body === 'mismatch') {
      sendError(
        res,
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
      return;
    }
    const forwarded = forward(req, res, fault, recorded, body);
    if (parsed.operation === 'UploadPart') {
      const uploadId = parsed.query.get('uploadId') ?? '';
      const parts = partsInFlight.get(uploadId) ?? new Set();
      partsInFlight.set(uploadId, parts);
      parts.add(forwarded);
      await forwarded;
      parts.delete(forwarded);
      if (parts.size === 0) partsInFlight.delete(uploadId);
      return;
    }
    await forwarded;
  };

  /** A body signed with a hex SHA-256, read whole and checked; null when there is no hash to check. */
  const signedBody = async (
    req: IncomingMessage,
    recorded: RecordedS3Request,
  ): Promise<Buffer | 'mismatch' | null> => {
    const signed = recorded.payloadHash;
    if (!signed || !/^[0-9a-f]{64}$/.test(signed)) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    return createHash('sha256').update(body).digest('hex') === signed ? body : 'mismatch';
  };

  const listUploads = async (res: ServerResponse, parsed: ParsedRequest): Promise<void> => {
    const prefix = parsed.query.get('prefix') ?? '';
    let ids: string[] = [];
    try {
      ids = await readdir(uploadsDir(parsed.bucket));
    } catch {
      ids = [];
    }
    const uploads: Array<{ key: string; uploadId: string; initiated: Date }> = [];
    for (const uploadId of ids) {
      const key = await uploadKey(parsed.bucket, uploadId);
      if (key === null || !key.startsWith(prefix)) continue;
      const info = await stat(join(uploadsDir(parsed.bucket), uploadId));
      uploads.push({ key, uploadId, initiated: info.birthtime });
    }
    uploads.sort((a, b) => a.key.localeCompare(b.key) || a.uploadId.localeCompare(b.uploadId));
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${xml(parsed.bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
      `<Prefix>${xml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
      uploads
        .map(
          (upload) =>
            `<Upload><Key>${xml(upload.key)}</Key><UploadId>${upload.uploadId}</UploadId>` +
            `<Initiated>${upload.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
        )
        .join('') +
      '</ListMultipartUploadsResult>';
    res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    fault: S3Fault | undefined,
    recorded: RecordedS3Request,
    /** The request body when it was already read (to check its hash); streamed through otherwise. */
    body: Buffer | null,
  ): Promise<void> =>
    new Promise((resolve) => {
      const upstream = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          if (fault) {
            // The operation took effect upstream; the client sees a failure (a lost answer).
            answer.resume();
            answer.on('end', () => {
              answerFault(res, fault);
              resolve();
            });
            return;
          }
          if (res.destroyed) {
            // The client left; s3rver still finished the request (see the 'close' handler below).
            answer.resume();
            answer.on('end', resolve);
            return;
          }
          recorded.status = answer.statusCode ?? 0;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.on('data', (chunk: Buffer) => {
            recorded.bytes += chunk.length;
          });
          answer.pipe(res);
          answer.on('end', resolve);
          answer.on('error', () => {
            res.destroy();
            resolve();
          });
        },
      );
      res.on('close', () => {
        // A whole body already sent upstream is left to finish there, as a request S3 received completes
        // (an abort waits for it); a streamed one is cut, since its body will never be complete.
        if (!res.writableEnded && !body) upstream.destroy();
      });
      upstream.on('error', () => {
        if (!res.headersSent) sendError(res, 502, 'BadGateway', 'The test proxy could not reach s3rver.');
        else res.destroy();
        resolve();
      });
      if (body) upstream.end(body);
      else req.pipe(upstream);
    });

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalError', `Test proxy failure: ${String(error)}`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    inject(fault) {
      faults.push({ ...fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
    },
    delay(operation, ms) {
      delays.set(operation, ms);
    },
    clear() {
      faults.length = 0;
      delays.clear();
    },
    stats(operation) {
      const { requests, injected, maxConcurrent } = statsOf(operation);
      return { requests, injected, maxConcurrent };
    },
    resetStats() {
      stats.clear();
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function parse(req: IncomingMessage): ParsedRequest {
  const url = new URL(req.url ?? '/', 'http://proxy.invalid');
  const [bucketPart = '', ...keyParts] = url.pathname.slice(1).split('/');
  const bucket = decodeURIComponent(bucketPart);
  const key = keyParts.map((part) => decodeURIComponent(part)).join('/');
  const query = url.searchParams;
  const method = req.method ?? 'GET';
  const operation = ((): S3Operation => {
    if (!key) {
      if (method === 'GET' && query.has('uploads')) return 'ListMultipartUploads';
      if (method === 'HEAD') return 'HeadBucket';
      return 'Other';
    }
    if (method === 'PUT' && query.has('uploadId') && query.has('partNumber')) return 'UploadPart';
    if (method === 'PUT' && !query.has('uploadId') && !req.headers['x-amz-copy-source']) return 'PutObject';
    if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
    if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
    if (method === 'DELETE' && query.has('uploadId')) return 'AbortMultipartUpload';
    if (method === 'DELETE') return 'DeleteObject';
    if (method === 'GET') return 'GetObject';
    if (method === 'HEAD') return 'HeadObject';
    return 'Other';
  })();
  return { operation, bucket, key, query };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) {
      resolve();
      return;
    }
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.resume();
  });
}

function answerFault(res: ServerResponse, fault: S3Fault): void {
  if (fault.respond === 'reset') {
    res.socket?.destroy();
    return;
  }
  const status = fault.respond;
  sendError(res, status, ERROR_CODES[status] ?? 'InjectedFault', `Injected fault: HTTP ${status}`);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<Error><Code>${code}</Code><Message>${xml(message)}</Message><RequestId>s3-fault-proxy</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
