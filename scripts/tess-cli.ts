#!/usr/bin/env node
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import * as tus from 'tus-js-client';
import type { components, operations } from './generated/openapi.types.js';
import { type TusFile, tusFileReader } from './tus-file-reader.js';

type FileDto = components['schemas']['FileDto'];
type FilePageDto = components['schemas']['FilePageDto'];
type JobDto = components['schemas']['JobDto'];
type ErrorDto = components['schemas']['ErrorDto'];
type ListFilesQuery = NonNullable<operations['listFiles']['parameters']['query']>;

const ENVIRONMENT =
  'Environment: TESS_URL (default http://127.0.0.1:3000) and TESS_TOKEN (from POST /api/v1/tokens).';

const MiB = 1024 * 1024;
/** The gateway's TUS_CHUNK_SIZE default: below common proxy body limits (Cloudflare: 100 MB). */
const DEFAULT_CHUNK_SIZE = 8 * MiB;

const COMMANDS = {
  upload: {
    usage: 'tess upload [--no-resume] [--chunk-size <size>] <file>...',
    summary: 'upload files (resumable) and wait until they are stored',
    about:
      'Upload files through tus (resumable, in chunks) and wait until each is stored; prints ' +
      '"<id>  <sha256>  <name>". The SHA-256 computed here is sent along and checked by the server ' +
      'against what it stores. An interrupted upload of the same file (same path, size and ' +
      'modification time) resumes where it stopped; --no-resume cancels it and starts over. ' +
      '--chunk-size: bytes per request, e.g. 8MiB (the default), 512KiB, 1048576.\n' +
      'Unfinished uploads are remembered in $XDG_CONFIG_HOME/tess/uploads.json (default ~/.config).',
    options: { 'no-resume': { type: 'boolean' }, 'chunk-size': { type: 'string' } },
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

/** Draws a progress bar on stderr (a terminal only, at most every 100 ms); `final` ends its line. */
function progressDrawer(label: string, total: number): (done: number, final?: boolean) => void {
  let last = 0;
  return (done, final = false) => {
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
}

function progressBar(label: string, total: number, done = 0): Transform {
  const draw = progressDrawer(label, total);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      draw(done);
      callback(null, chunk);
    },
    flush(callback) {
      draw(done, true);
      callback();
    },
  });
}

/** The local file to upload; a missing one or a directory is an error before anything is sent. */
async function localFile(path: string): Promise<LocalFile> {
  const found = await stat(path).catch(() => undefined);
  if (!found) throw new CliError(`${path}: no such file`);
  if (!found.isFile()) throw new CliError(`${path}: not a regular file`);
  const absolute = resolve(path);
  return {
    path: absolute,
    size: found.size,
    key: JSON.stringify([absolute, found.size, Math.trunc(found.mtimeMs)]),
  };
}

interface LocalFile {
  path: string;
  size: number;
  /** Which state entry belongs to this file: absolute path, size and modification time. */
  key: string;
}

interface UploadOptions {
  resume: boolean;
  chunkSize: number;
}

/** `8MiB`, `512KiB`, `1M`, `1048576`: bytes per PATCH, within the range the gateway allows for TUS_CHUNK_SIZE. */
function chunkSizeOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_CHUNK_SIZE;
  const match = /^(\d+)\s*(b|k|kib|kb|m|mib|mb|g|gib|gb)?$/i.exec(text.trim());
  const unit = { b: 1, k: 1024, m: MiB, g: 1024 * MiB }[(match?.[2] ?? 'b')[0]!.toLowerCase() as 'b'];
  const bytes = match ? Number(match[1]) * unit : Number.NaN;
  if (!(bytes >= 256 * 1024 && bytes <= 512 * MiB)) {
    throw new CliError(`--chunk-size must be between 256KiB and 512MiB (e.g. 8MiB), not "${text}"`, 2);
  }
  return bytes;
}

/**
 * Unfinished uploads: `{ <LocalFile.key>: { url, sha256 } }` in `uploads.json` in the user's config
 * directory (`$XDG_CONFIG_HOME/tess`, default `~/.config/tess`), 0600. An entry lives from the upload's
 * creation until its last byte was accepted. Each change is written to a temporary file and renamed, so a
 * killed CLI leaves the old or the new state, never half of one; the changes of one run are queued.
 */
class UploadState {
  readonly path = join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'tess', 'uploads.json');

  async get(key: string): Promise<{ url: string; sha256: string } | undefined> {
    await this.queue;
    return (await this.read())[key];
  }

  async set(key: string, entry: { url: string; sha256: string }): Promise<void> {
    await this.update((all) => {
      all[key] = entry;
    });
  }

  async remove(key: string): Promise<void> {
    await this.update((all) => {
      delete all[key];
    });
  }

  private async read(): Promise<Record<string, { url: string; sha256: string }>> {
    const text = await readFile(this.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '{}';
      throw new CliError(`cannot read ${this.path} (${error.code ?? error.message})`);
    });
    try {
      const parsed = JSON.parse(text) as unknown;
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, { url: string; sha256: string }>)
        : {};
    } catch {
      return {}; // A damaged state file only costs a resume: start over rather than refuse to upload.
    }
  }

  /** Updates run one after another (tus-js-client's callbacks do not wait for each other). */
  private queue: Promise<void> = Promise.resolve();

  private update(change: (all: Record<string, { url: string; sha256: string }>) => void): Promise<void> {
    const next = this.queue.then(() => this.write(change));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async write(change: (all: Record<string, { url: string; sha256: string }>) => void) {
    const all = await this.read();
    change(all);
    const temporary = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFile(temporary, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
      await rename(temporary, this.path);
    } catch (error) {
      await rm(temporary, { force: true });
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(`cannot write ${this.path} (${code ?? (error as Error).message})`);
    }
  }
}

/**
 * The file's SHA-256, read once before the upload. It cannot be computed while the chunks stream: tus
 * carries it in Upload-Metadata, which is sent with the creating POST, before the first byte (measured:
 * about 450 MiB/s from the page cache on the 2-core dev machine, i.e. ~1.1 s per 512 MiB, a fraction of
 * the upload itself; a resumed upload reuses the digest kept in the state file).
 */
async function hashFile(file: LocalFile, name: string): Promise<string> {
  const hash = createHash('sha256');
  const draw = progressDrawer(`sha256 ${name}`, file.size);
  let done = 0;
  try {
    for await (const chunk of createReadStream(file.path, { highWaterMark: MiB })) {
      hash.update(chunk as Buffer);
      done += (chunk as Buffer).length;
      draw(done);
    }
  } catch (error) {
    throw new CliError(
      `${file.path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  draw(done, true);
  return hash.digest('hex');
}

/** A tus-js-client error as one line: the gateway's own message where it answered, else why not. */
function tusFailure(conn: Connection, name: string, error: unknown): CliError {
  const detailed = error as Partial<tus.DetailedError>;
  const res = detailed.originalResponse;
  if (res) {
    const status = res.getStatus();
    let message = res.getBody() || 'request failed';
    try {
      message = (JSON.parse(message) as Partial<ErrorDto>).message ?? message;
    } catch {
      // Not a JSON answer: the text as it is.
    }
    return new CliError(`${name}: ${status}: ${message}`);
  }
  const cause = (detailed.causingError ?? error) as NodeJS.ErrnoException & { cause?: { code?: string } };
  return new CliError(
    `${name}: upload interrupted (${cause.code ?? cause.cause?.code ?? cause.message}); check TESS_URL ${conn.base} and run the command again to resume`,
  );
}

/** HEAD of a remembered upload: its offset, or undefined when it is gone (expired, cancelled, another user's). */
async function uploadOffset(conn: Connection, url: string): Promise<number | undefined> {
  if (!url.startsWith(`${conn.base}/api/v1/tus/`)) return undefined;
  const res = await send(conn, url.slice(conn.base.length), {
    method: 'HEAD',
    headers: { 'Tus-Resumable': '1.0.0' },
  });
  if (res.status === 404 || res.status === 410) return undefined;
  if (!res.ok) return failure(res);
  const offset = Number(res.headers.get('upload-offset'));
  return Number.isSafeInteger(offset) ? offset : undefined;
}

/**
 * DELETE (tus termination) of an unfinished upload. 423 means a request of an interrupted run still holds
 * the upload's lock on the server: wait for it a little. Anything else only costs the quota it reserves
 * until it expires, so it is a warning, not a failure.
 */
async function cancelUpload(conn: Connection, url: string, name: string): Promise<void> {
  if (!url.startsWith(`${conn.base}/api/v1/tus/`)) return;
  for (let attempt = 0; ; attempt++) {
    const res = await send(conn, url.slice(conn.base.length), {
      method: 'DELETE',
      headers: { 'Tus-Resumable': '1.0.0' },
    });
    if (res.ok || res.status === 404 || res.status === 410) return;
    if (res.status !== 423 || attempt >= 20) {
      process.stderr.write(
        `could not cancel the earlier upload of ${name} (${res.status}); it expires on its own\n`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Sends one file through tus; resolves with its id once the last byte was accepted. */
async function tusSend(
  conn: Connection,
  state: UploadState,
  file: LocalFile,
  name: string,
  options: UploadOptions,
): Promise<string> {
  let earlier = await state.get(file.key);
  if (earlier && !options.resume) {
    // Starting over: the unfinished upload would otherwise hold its size against the quota until it expires.
    await cancelUpload(conn, earlier.url, name);
    await state.remove(file.key);
    earlier = undefined;
  }
  let from = 0;
  if (earlier) {
    const offset = await uploadOffset(conn, earlier.url);
    if (offset === undefined) {
      process.stderr.write(`the earlier upload of ${name} is gone; starting over\n`);
      await state.remove(file.key);
      earlier = undefined;
    } else {
      from = offset;
      process.stderr.write(`resuming ${name} from ${(offset / MiB).toFixed(1)} MiB (${offset} bytes)\n`);
    }
  }
  const sha256 = earlier?.sha256 ?? (await hashFile(file, name));
  const draw = progressDrawer(`upload ${name}`, file.size);
  draw(from);
  const reader = tusFileReader();
  const url = await new Promise<string>((done, fail) => {
    const upload: tus.Upload = new tus.Upload({ path: file.path } as TusFile as unknown as Buffer, {
      endpoint: `${conn.base}/api/v1/tus`,
      fileReader: reader,
      uploadUrl: earlier?.url ?? null,
      headers: { Authorization: `Bearer ${conn.token}` },
      chunkSize: options.chunkSize,
      metadata: { filename: name, filetype: 'application/octet-stream', sha256 },
      // The URL is kept in this CLI's own state file (keyed by path, size and mtime), not tus-js-client's.
      storeFingerprintForResuming: false,
      retryDelays: [0, 1_000, 3_000, 5_000],
      onUploadUrlAvailable: () => {
        if (upload.url && upload.url !== earlier?.url) {
          state.set(file.key, { url: upload.url, sha256 }).catch((error: Error) => {
            void upload.abort(false);
            fail(error);
          });
        }
      },
      onProgress: (sent) => draw(sent),
      onSuccess: () => {
        draw(file.size, true);
        done(upload.url!);
      },
      onError: (error) => {
        if (process.stderr.isTTY) process.stderr.write('\n');
        fail(tusFailure(conn, name, error));
      },
    });
    upload.start();
  });
  await state.remove(file.key);
  return url.split('/').pop()!;
}

async function upload(conn: Connection, paths: string[], options: UploadOptions): Promise<void> {
  const files = await Promise.all(paths.map(localFile));
  const state = new UploadState();
  for (const file of files) {
    const name = basename(file.path);
    const id = await tusSend(conn, state, file, name, options);
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
    const stored = await api<FileDto>(conn, fileUrl(id));
    if (process.stderr.isTTY) process.stderr.write('\n');
    console.log(`${stored.id}  ${stored.sha256}  ${name}`);
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
  let parsed: {
    values: Record<string, string | boolean | undefined>;
    positionals: string[];
  };
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...COMMANDS[name].options,
      } as ParseArgsConfig['options'],
    }) as typeof parsed;
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
      return upload(connection(), positionals, {
        resume: values['no-resume'] !== true,
        chunkSize: chunkSizeOf(typeof values['chunk-size'] === 'string' ? values['chunk-size'] : undefined),
      });
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
