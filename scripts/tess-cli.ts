import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * `npm run tess -- <command>`: a small client of the TESS REST API for scripts.
 *   upload <file>...        upload (streamed, with a progress bar) and wait until stored
 *   status <id>             the job/file status as JSON
 *   download <id> <out>     download verified plaintext (with a progress bar)
 *   ls                      list your files
 * Environment: TESS_URL (default http://127.0.0.1:3000) and TESS_TOKEN (from POST /api/v1/tokens).
 */
const base = (process.env.TESS_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
const token = process.env.TESS_TOKEN;
const auth = { Authorization: `Bearer ${token}` };

class CliError extends Error {}

function progressBar(label: string, total: number): Transform {
  let done = 0;
  let last = 0;
  const draw = (final = false) => {
    const now = Date.now();
    if (!final && now - last < 100) return;
    last = now;
    const ratio = total ? done / total : 1;
    const width = 30;
    const filled = Math.round(ratio * width);
    process.stderr.write(
      `\r${label.slice(0, 30).padEnd(30)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%`,
    );
    if (final) process.stderr.write('\n');
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      draw();
      callback(null, chunk);
    },
    flush(callback) {
      draw(true);
      callback();
    },
  });
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${base}${path}`, { ...init, headers: { ...auth, ...init.headers } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new CliError(`${res.status} ${res.statusText}: ${body.message ?? 'request failed'}`);
  }
  return (await res.json()) as T;
}

async function upload(paths: string[]): Promise<void> {
  for (const path of paths) {
    const size = (await stat(path)).size;
    const boundary = `----tess${randomBytes(12).toString('hex')}`;
    const name = basename(path).replace(/["\r\n]/g, '_');
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    async function* body() {
      yield head;
      yield* createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(progressBar(`upload ${name}`, size));
      yield tail;
    }
    const res = await fetch(`${base}/api/v1/uploads`, {
      method: 'POST',
      headers: {
        ...auth,
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': String(head.length + size + tail.length),
      },
      body: Readable.toWeb(Readable.from(body())) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    const answer = (await res.json()) as { files?: { id: string }[]; message?: string };
    if (res.status !== 202 || !answer.files)
      throw new CliError(`${res.status}: ${answer.message ?? 'upload failed'}`);
    const id = answer.files[0]!.id;
    for (;;) {
      const job = await api<{
        status: string;
        progress: { bytesDone: number; bytesTotal: number };
        error?: string;
      }>(`/api/v1/jobs/${id}`);
      if (job.status === 'completed') break;
      if (job.status === 'failed') throw new CliError(`${name}: ${job.error ?? 'processing failed'}`);
      process.stderr.write(
        `\rencrypting ${name}: ${job.progress.bytesDone}/${job.progress.bytesTotal} bytes   `,
      );
      await new Promise((r) => setTimeout(r, 500));
    }
    const file = await api<{ id: string; sha256: string }>(`/api/v1/files/${id}`);
    process.stderr.write('\n');
    console.log(`${file.id}  ${file.sha256}  ${name}`);
  }
}

async function download(id: string, out: string): Promise<void> {
  const res = await fetch(`${base}/api/v1/files/${encodeURIComponent(id)}/content`, { headers: auth });
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new CliError(`${res.status}: ${body.message ?? 'download failed'}`);
  }
  const partial = `${out}.partial`;
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      progressBar(`download ${basename(out)}`, Number(res.headers.get('content-length') ?? 0)),
      createWriteStream(partial, { flags: 'wx' }),
    );
  } catch (error) {
    await unlink(partial).catch(() => undefined);
    throw new CliError(`download interrupted (${(error as Error).message}); nothing was written to ${out}`);
  }
  await rename(partial, out);
  console.log(`${out}  ${res.headers.get('etag') ?? ''}`);
}

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2);
  if (!token) throw new CliError('Set TESS_TOKEN (create one with POST /api/v1/tokens).');
  switch (command) {
    case 'upload':
      if (!args.length) throw new CliError('usage: tess upload <file>...');
      return upload(args);
    case 'status':
      if (!args[0]) throw new CliError('usage: tess status <id>');
      console.log(JSON.stringify(await api(`/api/v1/jobs/${encodeURIComponent(args[0])}`), null, 2));
      return;
    case 'download':
      if (!args[0] || !args[1]) throw new CliError('usage: tess download <id> <out>');
      return download(args[0], args[1]);
    case 'ls': {
      let cursor: string | null = null;
      do {
        const page: {
          items: { id: string; status: string; size: number; filename: string }[];
          nextCursor: string | null;
        } = await api(`/api/v1/files?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        for (const f of page.items)
          console.log(`${f.id}  ${f.status.padEnd(10)} ${String(f.size).padStart(12)}  ${f.filename}`);
        cursor = page.nextCursor;
      } while (cursor);
      return;
    }
    default:
      throw new CliError('usage: tess upload <file>... | status <id> | download <id> <out> | ls');
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof CliError ? error.message : error);
  process.exit(1);
});
