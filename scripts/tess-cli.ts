#!/usr/bin/env node
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import type { components, operations } from './generated/openapi.types.js';

type FileDto = components['schemas']['FileDto'];
type FilePageDto = components['schemas']['FilePageDto'];
type JobDto = components['schemas']['JobDto'];
type UploadAcceptedDto = components['schemas']['UploadAcceptedDto'];
type ErrorDto = components['schemas']['ErrorDto'];
type ListFilesQuery = NonNullable<operations['listFiles']['parameters']['query']>;

const ENVIRONMENT =
  'Environment: TESS_URL (default http://127.0.0.1:3000) and TESS_TOKEN (from POST /api/v1/tokens).';

const COMMANDS = {
  upload: {
    usage: 'tess upload <file>...',
    summary: 'upload files and wait until they are stored',
    about: 'Upload files (streamed) and wait until each is stored; prints "<id>  <sha256>  <name>".',
    options: {},
  },
  status: {
    usage: 'tess status <id>',
    summary: 'the job of a file as JSON',
    about: 'The job of a file (status and progress) as JSON.',
    options: {},
  },
  download: {
    usage: 'tess download [--force] <id> [<file or directory>]',
    summary: 'download verified plaintext',
    about:
      'Download verified plaintext. Into a directory (default: the current one) under its stored name; ' +
      'an existing file needs --force. An interrupted download is resumed on the next try.',
    options: { force: { type: 'boolean', short: 'f' } },
  },
  ls: {
    usage: 'tess ls',
    summary: 'list your files',
    about: 'List your files: id, status, size, name.',
    options: {},
  },
} as const;

type Command = keyof typeof COMMANDS;

/** An error meant for the user: printed as its message alone, on one line. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function help(command?: Command): string {
  if (command) {
    const { usage, about } = COMMANDS[command];
    return `usage: ${usage}\n\n${about}\n\n${ENVIRONMENT}`;
  }
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(52)} ${c.summary}`);
  return `usage: tess <command> [--help]\n\n${lines.join('\n')}\n\n${ENVIRONMENT}`;
}

interface Connection {
  base: string;
  token: string;
}

function connection(): Connection {
  const token = process.env.TESS_TOKEN;
  if (!token) throw new CliError('Set TESS_TOKEN (create one with POST /api/v1/tokens).');
  const base = (process.env.TESS_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (!URL.canParse(base)) throw new CliError(`TESS_URL is not a URL: ${base}`);
  return { base, token };
}

/** fetch against the gateway; an unreachable one is a readable error instead of `fetch failed`. */
async function send(conn: Connection, path: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(`${conn.base}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${conn.token}`, ...init.headers },
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `Cannot reach TESS at ${conn.base} (${cause?.code ?? cause?.message ?? (error as Error).message}); check TESS_URL.`,
    );
  }
}

/** Throws the gateway's error answer (`{statusCode, error, message}`) as one line. */
async function failure(res: Response): Promise<never> {
  const body = (await res.json().catch(() => ({}))) as Partial<ErrorDto>;
  throw new CliError(`${res.status} ${res.statusText}: ${body.message ?? 'request failed'}`);
}

async function api<T>(conn: Connection, path: string): Promise<T> {
  const res = await send(conn, path);
  if (!res.ok) return failure(res);
  try {
    return (await res.json()) as T;
  } catch {
    throw new CliError(`${conn.base}${path} did not answer JSON; is TESS_URL a TESS gateway?`);
  }
}

const fileUrl = (id: string) => `/api/v1/files/${encodeURIComponent(id)}`;

function progressBar(label: string, total: number, done = 0): Transform {
  let last = 0;
  const draw = (final = false) => {
    if (!process.stderr.isTTY) return;
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

/** The local file to upload; a missing one or a directory is an error before anything is sent. */
async function localFile(path: string): Promise<number> {
  const found = await stat(path).catch(() => undefined);
  if (!found) throw new CliError(`${path}: no such file`);
  if (!found.isFile()) throw new CliError(`${path}: not a regular file`);
  return found.size;
}

async function upload(conn: Connection, paths: string[]): Promise<void> {
  const sizes = await Promise.all(paths.map(localFile));
  for (const [index, path] of paths.entries()) {
    const size = sizes[index]!;
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
    const res = await send(conn, '/api/v1/uploads', {
      method: 'POST',
      headers: {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': String(head.length + size + tail.length),
      },
      body: Readable.toWeb(Readable.from(body())) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    if (res.status !== 202) await failure(res);
    const id = ((await res.json()) as UploadAcceptedDto).files[0]!.id;
    for (;;) {
      const job = await api<JobDto>(conn, `/api/v1/jobs/${id}`);
      if (job.status === 'completed') break;
      if (job.status === 'failed') throw new CliError(`${name}: ${job.error ?? 'processing failed'}`);
      if (process.stderr.isTTY)
        process.stderr.write(
          `\rencrypting ${name}: ${job.progress.bytesDone}/${job.progress.bytesTotal} bytes   `,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
    const file = await api<FileDto>(conn, fileUrl(id));
    if (process.stderr.isTTY) process.stderr.write('\n');
    console.log(`${file.id}  ${file.sha256}  ${name}`);
  }
}

/** A stored name as a plain file name: no directories, never empty, `.` or `..`. */
function localName(file: FileDto): string {
  const name = basename(file.filename.replace(/[\\/]/g, '_')).replace(/^\.+$/, '');
  return name || file.id;
}

/** Where the download goes: into a directory under the stored name, or the given path (--force to overwrite). */
async function downloadTarget(file: FileDto, out: string, force: boolean): Promise<string> {
  const found = await stat(out).catch(() => undefined);
  const target = found?.isDirectory() ? join(out, localName(file)) : out;
  const existing = target === out ? found : await stat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new CliError(`${target} is a directory`);
  if (existing && !force) throw new CliError(`${target} exists; pass --force to overwrite it`);
  const parent = await stat(join(target, '..')).catch(() => undefined);
  if (!parent?.isDirectory()) throw new CliError(`${join(target, '..')}: no such directory`);
  return target;
}

/** Bytes of an earlier try at the same file (same ETag) that a Range request can continue. */
async function resumable(partial: string, etag: string, size: number): Promise<number> {
  const recorded = await readFile(`${partial}.etag`, 'utf8').catch(() => undefined);
  const have = (await stat(partial).catch(() => undefined))?.size ?? 0;
  return recorded === etag && have > 0 && have < size ? have : 0;
}

async function sha256Of(path: string): Promise<ReturnType<typeof createHash>> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash;
}

/**
 * Downloads into `<target>.partial` (its ETag beside it in `<target>.partial.etag`), checks the SHA-256
 * the gateway stored, then renames. An interrupted try leaves both, and the next one asks only for the
 * rest (Range) when the ETag still matches; otherwise it starts over.
 */
async function download(conn: Connection, id: string, out: string, force: boolean): Promise<void> {
  const file = await api<FileDto>(conn, fileUrl(id));
  const target = await downloadTarget(file, out, force);
  const partial = `${target}.partial`;
  const etag = file.sha256 ? `"sha256-${file.sha256}"` : '';
  const from = etag ? await resumable(partial, etag, file.size) : 0;
  const res = await send(
    conn,
    `${fileUrl(id)}/content`,
    from ? { headers: { Range: `bytes=${from}-` } } : {},
  );
  if (!res.ok || !res.body) return failure(res);
  const resumed = res.status === 206 && res.headers.get('etag') === etag;
  if (res.status === 206 && !resumed) {
    await res.body.cancel();
    await rm(`${partial}.etag`, { force: true });
    throw new CliError(`${id} changed while resuming; run the command again to start over`);
  }
  const hash = resumed ? await sha256Of(partial) : createHash('sha256');
  await writeFile(`${partial}.etag`, res.headers.get('etag') ?? '');
  try {
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      progressBar(`download ${basename(target)}`, file.size, resumed ? from : 0),
      new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback(null, chunk);
        },
      }),
      createWriteStream(partial, { flags: resumed ? 'a' : 'w' }),
    );
  } catch (error) {
    throw new CliError(
      `download interrupted (${(error as Error).message}); ${target} was not written, run the command again to resume`,
    );
  }
  const digest = hash.digest('hex');
  if (file.sha256 && digest !== file.sha256) {
    await rm(partial, { force: true });
    await rm(`${partial}.etag`, { force: true });
    throw new CliError(`the download does not match the stored SHA-256; ${target} was not written`);
  }
  await rename(partial, target);
  await rm(`${partial}.etag`, { force: true });
  console.log(`${target}  ${digest}`);
}

async function list(conn: Connection): Promise<void> {
  let cursor: string | null = null;
  do {
    const query: ListFilesQuery = { limit: 100, ...(cursor ? { cursor } : {}) };
    const params = new URLSearchParams(
      Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
    );
    const page: FilePageDto = await api<FilePageDto>(conn, `/api/v1/files?${params}`);
    for (const f of page.items)
      console.log(`${f.id}  ${f.status.padEnd(10)} ${String(f.size).padStart(12)}  ${f.filename}`);
    cursor = page.nextCursor;
  } while (cursor);
}

const isCommand = (name: string | undefined): name is Command =>
  name !== undefined && Object.hasOwn(COMMANDS, name);

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return;
  }
  if (!isCommand(name)) throw new CliError(`unknown command "${name}"; see tess --help`, 2);
  let parsed: { values: { help?: boolean; force?: string | boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { help: { type: 'boolean', short: 'h' }, ...COMMANDS[name].options },
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message.split('\n')[0]}; see tess ${name} --help`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(help(name));
    return;
  }
  const usage = () => new CliError(`usage: ${COMMANDS[name].usage}`, 2);
  switch (name) {
    case 'upload':
      if (!positionals.length) throw usage();
      return upload(connection(), positionals);
    case 'status':
      if (positionals.length !== 1) throw usage();
      console.log(
        JSON.stringify(
          await api<JobDto>(connection(), `/api/v1/jobs/${encodeURIComponent(positionals[0]!)}`),
          null,
          2,
        ),
      );
      return;
    case 'download':
      if (positionals.length < 1 || positionals.length > 2) throw usage();
      return download(connection(), positionals[0]!, positionals[1] ?? '.', values.force === true);
    case 'ls':
      if (positionals.length) throw usage();
      return list(connection());
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message =
    error instanceof CliError
      ? error.message
      : `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  console.error(message.replace(/\s*\n\s*/g, ' '));
  process.exit(error instanceof CliError ? error.exitCode : 1);
});
