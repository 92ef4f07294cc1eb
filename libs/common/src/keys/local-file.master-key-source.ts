import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  decodeBase64Key,
  KEY_BYTES,
  type MasterKey,
  MasterKeyNotFoundError,
  type MasterKeySource,
} from './master-key-source.js';

/*
 * The local keyring file: `{ "current": "<id>", "keys": { "<id>": "<base64 of 32 bytes>", ... } }`.
 * Invariants:
 * - the file is never visible half-written: it is written to a temp file (0600, fsynced) which is then
 *   hard-linked into place on creation (fails if another process won the race) or renamed over the old
 *   file on rotation;
 * - a version, once written, never changes (a file that changes a known version is refused);
 * - rotations are serialized across processes by an O_EXCL lock file next to the keyring;
 * - the file must not be accessible to group or others; error messages never quote its content.
 */

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_FILE_BYTES = 1024 * 1024;

export interface LocalFileMasterKeySourceOptions {
  /** The keyring file; the caller passes `DATA_DIR/master.key` by default (MASTER_KEY_FILE). */
  path: string;
  /** Create the keyring with one fresh key when the file does not exist yet (default true). */
  createIfMissing?: boolean;
  /**
   * Re-read the file to pick up a rotation made by another process once the cached view is this old (ms).
   * Default: never; processes keep wrapping under the version they loaded until restarted (the versions
   * they wrapped under stay readable, so this is safe, only slower to converge).
   */
  refreshCurrentAfterMs?: number;
  /** How long `rotate()` waits for a concurrent rotation's lock before giving up (default 10 s). */
  lockTimeoutMs?: number;
}

interface Keyring {
  current: string;
  keys: Map<string, Buffer>;
}

/** Master keys from a versioned keyring file on local disk (the embedded default). */
export class LocalFileMasterKeySource implements MasterKeySource {
  readonly keyRefScope = undefined;
  readonly path: string;
  readonly #createIfMissing: boolean;
  readonly #refreshAfterMs: number | undefined;
  readonly #lockTimeoutMs: number;
  readonly #keys = new Map<string, Buffer>();
  #currentId: string | undefined;
  #loadedAt = 0;
  #loading: Promise<void> | undefined;

  constructor(options: LocalFileMasterKeySourceOptions) {
    if (!options.path) throw new Error('LocalFileMasterKeySource needs the path of the master key file');
    this.path = options.path;
    this.#createIfMissing = options.createIfMissing ?? true;
    this.#refreshAfterMs = options.refreshCurrentAfterMs;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  }

  async current(): Promise<MasterKey> {
    if (this.#currentId === undefined) {
      await this.#reload();
    } else if (this.#refreshAfterMs !== undefined && Date.now() - this.#loadedAt >= this.#refreshAfterMs) {
      // Keep serving the cached version if the file cannot be read right now; check() reports why.
      await this.#reload().catch(() => undefined);
    }
    const id = this.#currentId!;
    return { id, key: Buffer.from(this.#keys.get(id)!) };
  }

  async get(id: string): Promise<Buffer> {
    if (!this.#keys.has(id)) {
      // Possibly added by a rotation in another process since we last read the file.
      await this.#reload();
      if (!this.#keys.has(id)) throw new MasterKeyNotFoundError(id, `the master key file ${this.path}`);
    }
    return Buffer.from(this.#keys.get(id)!);
  }

  async rotate(): Promise<{ id: string }> {
    await this.current();
    const release = await this.#lock();
    try {
      const ring = await this.#read();
      if (ring === undefined) throw new Error(`Master key file ${this.path} disappeared during rotation`);
      this.#absorb(ring);
      const id = randomUUID();
      const key = randomBytes(KEY_BYTES);
      ring.keys.set(id, key);
      ring.current = id;
      const tmp = await this.#writeTemp(serialize(ring));
      try {
        await rename(tmp, this.path);
      } catch (error) {
        await rm(tmp, { force: true });
        throw new Error(`Cannot replace master key file ${this.path}: ${describe(error)}`, { cause: error });
      }
      await syncDirectory(dirname(this.path));
      this.#absorb(ring);
      return { id };
    } finally {
      await release();
    }
  }

  /** Re-reads and re-validates the file (permissions, format, immutability of known versions). */
  async check(): Promise<void> {
    await this.#reload();
  }

  /** Nothing to release: the file is opened and closed per read. */
  async close(): Promise<void> {}

  #reload(): Promise<void> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    let ring = await this.#read();
    if (ring === undefined) {
      if (this.#currentId !== undefined) throw new Error(`Master key file ${this.path} no longer exists`);
      if (!this.#createIfMissing) throw new Error(`Master key file ${this.path} does not exist`);
      await this.#create();
      ring = await this.#read();
      if (ring === undefined) throw new Error(`Master key file ${this.path} vanished right after creation`);
    }
    this.#absorb(ring);
  }

  #absorb(ring: Keyring): void {
    for (const [id, key] of ring.keys) {
      const known = this.#keys.get(id);
      if (known === undefined) {
        this.#keys.set(id, key);
      } else if (!timingSafeEqual(known, key)) {
        throw new Error(
          `Master key file ${this.path} changed the key of version "${id}"; versions are immutable. ` +
            'Restore the original keyring.',
        );
      }
    }
    this.#currentId = ring.current;
    this.#loadedAt = Date.now();
  }

  async #read(): Promise<Keyring | undefined> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, 'r');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw new Error(`Cannot open master key file ${this.path}: ${describe(error)}`, { cause: error });
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new Error(`Master key file ${this.path} is not a regular file`);
      const mode = stat.mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new Error(
          `Master key file ${this.path} has mode ${mode.toString(8).padStart(4, '0')}: it must be accessible ` +
            `by its owner only. Refusing to start; run: chmod 600 ${this.path}`,
        );
      }
      if (stat.size > MAX_FILE_BYTES) throw this.#malformed(`larger than ${MAX_FILE_BYTES} bytes`);
      return this.#parse(await handle.readFile('utf8'));
    } finally {
      await handle.close();
    }
  }

  #parse(text: string): Keyring {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      // The parser's message quotes the input, which may be key material.
      throw this.#malformed('not valid JSON');
    }
    if (!isRecord(data) || !isRecord(data.keys)) {
      throw this.#malformed('expected {"current": "<id>", "keys": {"<id>": "<base64 key>"}}');
    }
    const keys = new Map<string, Buffer>();
    for (const [id, value] of Object.entries(data.keys)) {
      if (!KEY_ID.test(id)) throw this.#malformed('a key id is not 1-64 characters of [A-Za-z0-9._-]');
      const key = decodeBase64Key(value);
      if (key === undefined) throw this.#malformed(`key "${id}" is not ${KEY_BYTES} bytes in base64`);
      keys.set(id, key);
    }
    const current = data.current;
    if (typeof current !== 'string' || !KEY_ID.test(current)) {
      throw this.#malformed('"current" must be a key id');
    }
    if (!keys.has(current)) throw this.#malformed(`"current" names key "${current}", which is not in "keys"`);
    return { current, keys };
  }

  #malformed(reason: string): Error {
    return new Error(`Master key file ${this.path} is malformed: ${reason}. Refusing to start`);
  }

  /** Creates the keyring unless another process does so first (link(2) fails with EEXIST then). */
  async #create(): Promise<void> {
    const directory = dirname(this.path);
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const id = randomUUID();
    const key = randomBytes(KEY_BYTES);
    const tmp = await this.#writeTemp(serialize({ current: id, keys: new Map([[id, key]]) }));
    key.fill(0);
    try {
      await link(tmp, this.path);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') {
        throw new Error(`Cannot create master key file ${this.path}: ${describe(error)}`, { cause: error });
      }
    } finally {
      await rm(tmp, { force: true });
    }
    await syncDirectory(directory);
  }

  async #writeTemp(text: string): Promise<string> {
    const tmp = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(text);
      await handle.sync();
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw new Error(`Cannot write master key file ${tmp}: ${describe(error)}`, { cause: error });
    }
    return tmp;
  }

  async #lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.path}.lock`;
    const deadline = Date.now() + this.#lockTimeoutMs;
    for (;;) {
      try {
        const handle = await open(lockPath, 'wx', 0o600);
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        return () => rm(lockPath, { force: true });
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') {
          throw new Error(`Cannot create lock file ${lockPath}: ${describe(error)}`, { cause: error });
        }
        if (Date.now() >= deadline) {
          throw new Error(
            `Another master key rotation holds ${lockPath}; if none is running, remove that file and retry`,
          );
        }
        await sleep(20);
      }
    }
  }
}

function serialize(ring: Keyring): string {
  const keys = Object.fromEntries([...ring.keys].map(([id, key]) => [id, key.toString('base64')]));
  return `${JSON.stringify({ current: ring.current, keys }, null, 2)}\n`;
}

async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not every platform or file system can fsync a directory; the data file itself was fsynced.
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorCode(error: unknown): string | undefined {
  return isRecord(error) && typeof error.code === 'string' ? error.code : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
