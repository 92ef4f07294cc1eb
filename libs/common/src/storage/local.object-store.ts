import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { releaseBuffer } from '../util/release-buffer.js';
import { SyncAhead } from '../util/sync-ahead.js';
import {
  InvalidObjectKeyError,
  ObjectNotFoundError,
  type ObjectStat,
  type ObjectStore,
  type PutObjectOptions,
} from './object-store.js';
import {
  abortReason,
  assertRangeArguments,
  emptyStream,
  MiB,
  ProgressReporter,
  resolveRange,
  toBuffer,
} from './object-store.util.js';

export interface LocalObjectStoreOptions {
  /** Directory holding the objects (DATA_DIR/objects); created with mode 0700 when missing. */
  root: string;
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** Writes are batched into writev calls of about this many bytes; reads use chunks of this size. */
const IO_CHUNK = MiB;
/** Leaves headroom below IOV_MAX (1024 on Linux) per writev. */
const MAX_IOVECS = 512;
const TEMP_SUFFIX = '.partial';
/** Writes in progress, under the root; key segments cannot start with ".", so no key maps here. */
const PARTIAL_DIR = '.partial';
const MAX_KNOWN_DIRECTORIES = 1024;
/**
 * Every this many bytes a write starts an fdatasync in the background, so the fsync that commits an object
 * has only its tail left to write rather than the whole object (the dirty page cache of a large file is
 * otherwise all written back then; for a pipelined upload that fsync is most of what is left after the
 * last byte arrived).
 */
const SYNC_AHEAD = 32 * MiB;
const TEMP_RANDOM_HEX = 12;

/**
 * Objects as files under `root`: key `objects/<id>` is the file `<root>/objects/<id>`.
 *
 * Writes go to `<root>/.partial/<key digest>.<random>.partial`, are fsynced, then renamed over the target
 * (atomic on POSIX within one file system) and the target directory is fsynced, so a reader sees either no
 * object or all of it. Key segments may not start with `.`, which keeps objects and `.partial` apart, and
 * finding a key's unfinished writes reads only the writes in progress, never the whole object directory.
 */
export class LocalObjectStore implements ObjectStore {
  readonly driver = 'local' as const;
  readonly root: string;
  /** `<root>/.partial`: writes in progress. */
  private readonly partials: string;
  /** Directories this instance made or found; a write that finds one gone makes it again. */
  private readonly directories = new Set<string>();

  constructor(options: LocalObjectStoreOptions) {
    if (!options.root) throw new Error('LocalObjectStore needs a root directory');
    this.root = resolve(options.root);
    this.partials = join(this.root, PARTIAL_DIR);
  }

  async put(key: string, body: Readable, options: PutObjectOptions = {}): Promise<ObjectStat> {
    const { signal } = options;
    const onAbort = (): void => {
      if (signal) body.destroy(abortReason(signal) as Error);
    };
    let target: string;
    try {
      target = this.pathOf(key);
      signal?.throwIfAborted();
    } catch (error) {
      body.destroy();
      throw error;
    }
    const directory = dirname(target);
    const temp = join(
      this.partials,
      `${partialPrefix(key)}${randomBytes(TEMP_RANDOM_HEX / 2).toString('hex')}${TEMP_SUFFIX}`,
    );
    const progress = new ProgressReporter(options.onProgress);
    let handle: FileHandle | undefined;
    let ahead: SyncAhead | undefined;
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      handle = await this.inDirectory(this.partials, () => open(temp, 'wx', FILE_MODE));
      ahead = new SyncAhead(handle, SYNC_AHEAD);
      let written = 0;
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const flush = async (): Promise<void> => {
        if (batchBytes === 0 || !handle) return;
        // writev may write fewer bytes than asked (a disk filling up answers short before ENOSPC): write
        // the rest, so a short write can never become a short object.
        let done = (await handle.writev(batch)).bytesWritten;
        while (done < batchBytes) {
          const rest = Buffer.concat(batch).subarray(done);
          const { bytesWritten } = await handle.write(rest, 0, rest.length);
          if (bytesWritten === 0)
            throw new Error(`no progress writing ${temp} (${done} of ${batchBytes} bytes)`);
          done += bytesWritten;
        }
        if (options.releaseChunks) for (const chunk of batch) releaseBuffer(chunk);
        written += batchBytes;
        batch = [];
        batchBytes = 0;
        progress.update(written);
        ahead?.wrote(written);
      };
      for await (const chunk of body) {
        const buffer = toBuffer(chunk);
        if (buffer.length === 0) continue;
        batch.push(buffer);
        batchBytes += buffer.length;
        if (batchBytes >= IO_CHUNK || batch.length >= MAX_IOVECS) await flush();
      }
      await flush();
      // An error a background sync saw is not reported again by the final fsync (Linux reports it once).
      await ahead.drain();
      await handle.sync();
      await handle.close();
      handle = undefined;
      signal?.throwIfAborted();
      await this.inDirectory(directory, () => rename(temp, target));
      await syncDirectory(directory);
      progress.finish(written);
      return { size: written };
    } catch (error) {
      // Never close a descriptor a sync still uses.
      await ahead?.settled();
      await handle?.close().catch(() => undefined);
      await rm(temp, { force: true });
      body.destroy();
      if (signal?.aborted) throw abortReason(signal);
      throw describeFsError(`Writing object ${key} under ${this.root}`, error);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async getRange(key: string, start: number, end?: number): Promise<Readable> {
    const path = this.pathOf(key);
    assertRangeArguments(key, start, end);
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      throw describeFsError(`Opening object ${key}`, error);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new ObjectNotFoundError(key);
      const last = resolveRange(key, info.size, start, end);
      if (last === null) {
        await handle.close();
        return emptyStream();
      }
      // Reading through the open handle keeps the range consistent even if the key is replaced meanwhile.
      return handle.createReadStream({ start, end: last, highWaterMark: IO_CHUNK, autoClose: true });
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  async stat(key: string): Promise<ObjectStat | null> {
    const path = this.pathOf(key);
    try {
      const info = await lstat(path);
      return info.isFile() ? { size: info.size } : null;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw describeFsError(`Reading the size of object ${key}`, error);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      if (isNotFound(error)) return;
      throw describeFsError(`Deleting object ${key}`, error);
    }
  }

  async abortIncomplete(key: string): Promise<number> {
    this.pathOf(key);
    let entries: string[];
    try {
      // Only writes in progress (or left by a crash) live here, so this stays cheap however many
      // objects the store holds.
      entries = await readdir(this.partials);
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw describeFsError(`Listing unfinished writes of ${key}`, error);
    }
    const prefix = partialPrefix(key);
    const leftovers = entries.filter(
      (entry) =>
        entry.startsWith(prefix) &&
        entry.endsWith(TEMP_SUFFIX) &&
        /^[0-9a-f]+$/.test(entry.slice(prefix.length, -TEMP_SUFFIX.length)) &&
        entry.length === prefix.length + TEMP_RANDOM_HEX + TEMP_SUFFIX.length,
    );
    for (const entry of leftovers) await rm(join(this.partials, entry), { force: true });
    return leftovers.length;
  }

  /** Nothing to release: every file handle is closed by the call that opened it. */
  async close(): Promise<void> {}

  async check(): Promise<void> {
    const probe = join(this.root, `.check.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    try {
      await mkdir(this.root, { recursive: true, mode: DIR_MODE });
      const handle = await open(probe, 'wx', FILE_MODE);
      try {
        await handle.writeFile('ok');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await unlink(probe);
    } catch (error) {
      await rm(probe, { force: true }).catch(() => undefined);
      throw describeFsError(`Local object store ${this.root} is not writable`, error);
    }
  }

  /**
   * Runs a file operation inside `directory`, making the directory first (once per instance); when the
   * operation finds it gone (removed behind our back since), makes it again and retries once.
   */
  private async inDirectory<T>(directory: string, operation: () => Promise<T>): Promise<T> {
    await this.ensureDirectory(directory);
    try {
      return await operation();
    } catch (error) {
      if (!isNotFound(error)) throw error;
      this.directories.delete(directory);
      await this.ensureDirectory(directory);
      return operation();
    }
  }

  /** Creates a directory once per store instance (a recursive mkdir per object costs two syscalls). */
  private async ensureDirectory(directory: string): Promise<void> {
    if (this.directories.has(directory)) return;
    await mkdir(directory, { recursive: true, mode: DIR_MODE });
    if (this.directories.size >= MAX_KNOWN_DIRECTORIES) this.directories.clear();
    this.directories.add(directory);
  }

  /** Maps a key to its file, rejecting anything that could leave `root` (keys are never user input). */
  private pathOf(key: string): string {
    if (typeof key !== 'string' || key.length === 0) throw new InvalidObjectKeyError(String(key), 'empty');
    if (key.length > 1024) throw new InvalidObjectKeyError(key, 'longer than 1024 characters');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
    if (/[\u0000-\u001f\u007f]/.test(key))
      throw new InvalidObjectKeyError(key, 'contains control characters');
    if (key.includes('\\')) throw new InvalidObjectKeyError(key, 'contains a backslash');
    if (key.includes('..')) throw new InvalidObjectKeyError(key, 'contains ".."');
    if (key.startsWith('/') || isAbsolute(key)) throw new InvalidObjectKeyError(key, 'is an absolute path');
    for (const segment of key.split('/')) {
      if (segment === '') throw new InvalidObjectKeyError(key, 'has an empty path segment');
      if (segment.startsWith('.')) throw new InvalidObjectKeyError(key, 'has a segment starting with "."');
    }
    const path = resolve(this.root, key);
    if (!path.startsWith(this.root + sep)) throw new InvalidObjectKeyError(key, 'resolves outside the root');
    return path;
  }
}

/** Temp names start with a digest of the key: fixed length whatever the key, and one prefix per key. */
function partialPrefix(key: string): string {
  return `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.`;
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(error: unknown): boolean {
  return errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR';
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** Keeps typed errors as they are; wraps file system errors in a message naming the operation. */
function describeFsError(what: string, error: unknown): unknown {
  if (error instanceof InvalidObjectKeyError || error instanceof ObjectNotFoundError) return error;
  if (error instanceof RangeError || error instanceof TypeError) return error;
  const code = errorCode(error);
  if (code === undefined) return error;
  const hint =
    code === 'ENOSPC'
      ? ' (volume full)'
      : code === 'EACCES' || code === 'EPERM'
        ? ' (permission denied)'
        : '';
  const message = error instanceof Error ? error.message : String(error);
  return Object.assign(new Error(`${what} failed${hint}: ${message}`, { cause: error }), { code });
}
