import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  AwsSecretsMasterKeySource,
  createObjectDecryptStream,
  createObjectStore,
  EnvelopeKeyProvider,
  LocalFileMasterKeySource,
  loadConfig,
  type MasterKeySource,
  type ObjectStore,
  S3ObjectStore,
} from '#common';

/**
 * `npm run recover -- --from <directory | s3://bucket> --master-key <key file | secret id> --out <dir>
 * [--names <export.json>]` (docs/security.md item 35): the promise that the bucket plus the master key
 * alone recover every file, as a tool. Without PostgreSQL or Redis, it lists the objects (`objects/<file
 * id>`), decrypts and verifies each one (header, key commitment, every segment's tag, the last-segment flag;
 * the SHA-256 too when the optional database export gives it) and writes the plaintext to `<out>/<file
 * id>` (through `<id>.partial`, renamed once verified), appending one JSON line per object to
 * `<out>/manifest.jsonl`: `{id, ok, sha256, bytes, name?}` or `{id, ok: false, error}`. Streams in constant
 * memory (one object at a time, segment by segment). Re-running resumes: objects recovered already (in
 * the manifest and on disk) are skipped, failures are tried again. Exit code 1 when any object failed.
 *
 * Original names are not in the objects; `--names` takes a database export made while the database
 * existed. With file versions (each version its own object, docs/architecture.md "File versions"), the
 * export names each object's file and version(s), so the manifest rebuilds the version rows:
 * `psql -At -c "SELECT json_agg(json_build_object('id', v.object_id, 'fileId', v.file_id, 'version',
 * v.version, 'filename', f.filename, 'sha256', v.sha256)) FROM file_versions v JOIN files f ON f.id =
 * v.file_id" > names.json`. A manifest line then carries `versions: [{fileId, version}]` (more than one
 * when a restored copy shares the object). An older export of `files` (`id`, `filename`, `sha256`) still
 * works.
 * An S3 source reads S3_REGION, S3_ENDPOINT, S3_FORCE_PATH_STYLE and the credentials from the environment;
 * a secret id reads SECRETS_MANAGER_REGION / SECRETS_MANAGER_ENDPOINT. Envelope mode only: files of
 * KEY_MODE=per-file-secret have their key in their own secret, not under the master key.
 */

export interface RecoverOptions {
  from: string;
  masterKey: string;
  out: string;
  names?: string;
  env?: NodeJS.ProcessEnv;
}

export interface RecoverReport {
  recovered: string[];
  skipped: string[];
  failed: Array<{ id: string; error: string }>;
}

/** A version an object is (its file and number), from the export. */
export interface RecoveredVersion {
  fileId: string;
  version: number;
}

interface ManifestLine {
  id: string;
  ok: boolean;
  sha256?: string;
  bytes?: number;
  name?: string;
  versions?: RecoveredVersion[];
  error?: string;
}

interface KnownObject {
  filename?: string;
  sha256?: string;
  versions: RecoveredVersion[];
}

const PREFIX = 'objects/';
const FILE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The object store and the file ids in it. */
async function openSource(
  from: string,
  env: NodeJS.ProcessEnv,
): Promise<{ store: ObjectStore; ids: () => AsyncGenerator<string>; close: () => Promise<void> }> {
  if (from.startsWith('s3://')) {
    const bucket = from.slice('s3://'.length).replace(/\/+$/, '');
    const { storage } = loadConfig({ ...env, STORAGE_DRIVER: 's3', S3_BUCKET: bucket });
    if (storage.driver !== 's3') throw new Error('unreachable');
    const client = new S3Client(S3ObjectStore.clientConfig(storage));
    const store = new S3ObjectStore({ ...storage, client });
    return {
      store,
      async *ids() {
        let token: string | undefined;
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIX, ContinuationToken: token }),
          );
          for (const item of page.Contents ?? []) yield item.Key!.slice(PREFIX.length);
          token = page.NextContinuationToken;
        } while (token);
      },
      close: async () => {
        await store.close();
        client.destroy();
      },
    };
  }
  // The store's root (DATA_DIR, holding objects/) or the objects directory itself.
  const dir = resolve(from);
  const root = existsSync(join(dir, 'objects')) ? dir : resolve(dir, '..');
  const store = createObjectStore({ driver: 'local', root });
  return {
    store,
    async *ids() {
      for (const name of (await readdir(join(root, 'objects'))).sort()) yield name;
    },
    close: () => store.close(),
  };
}

function masterKeySource(
  masterKey: string,
  env: NodeJS.ProcessEnv,
): { source: MasterKeySource; name: 'local' | 'aws-sm' } {
  if (existsSync(masterKey)) {
    return {
      source: new LocalFileMasterKeySource({ path: resolve(masterKey), createIfMissing: false }),
      name: 'local',
    };
  }
  const { keys } = loadConfig(env);
  return {
    source: new AwsSecretsMasterKeySource({
      region: keys.secretsManagerRegion,
      endpoint: keys.secretsManagerEndpoint,
      secretId: masterKey,
      createIfMissing: false,
    }),
    name: 'aws-sm',
  };
}

/** The manifest so far (last line per id wins); a line torn by an interruption is ended first. */
async function readManifest(path: string): Promise<Map<string, ManifestLine>> {
  const done = new Map<string, ManifestLine>();
  const text = await readFile(path, 'utf8').catch(() => '');
  if (text && !text.endsWith('\n')) await appendFile(path, '\n');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as ManifestLine;
      done.set(entry.id, entry);
    } catch {
      // A line torn by an interruption: that object is simply recovered again.
    }
  }
  return done;
}

async function readNames(path: string | undefined): Promise<Map<string, KnownObject>> {
  if (!path) return new Map();
  const rows = JSON.parse(await readFile(path, 'utf8')) as Array<{
    id: string;
    fileId?: string;
    version?: number;
    filename?: string;
    sha256?: string;
  }> | null;
  const known = new Map<string, KnownObject>();
  for (const r of rows ?? []) {
    const entry = known.get(r.id) ?? { filename: r.filename, sha256: r.sha256?.trim(), versions: [] };
    if (r.fileId && typeof r.version === 'number')
      entry.versions.push({ fileId: r.fileId, version: r.version });
    known.set(r.id, entry);
  }
  for (const entry of known.values()) {
    entry.versions.sort((a, b) => a.fileId.localeCompare(b.fileId) || a.version - b.version);
  }
  return known;
}

export async function recover(options: RecoverOptions): Promise<RecoverReport> {
  const env = options.env ?? process.env;
  const out = resolve(options.out);
  await mkdir(out, { recursive: true, mode: 0o700 });
  const manifestPath = join(out, 'manifest.jsonl');
  const manifest = await readManifest(manifestPath);
  const names = await readNames(options.names);
  const { source, name } = masterKeySource(options.masterKey, env);
  const keys = new EnvelopeKeyProvider(source, name);
  const objects = await openSource(options.from, env);
  const report: RecoverReport = { recovered: [], skipped: [], failed: [] };
  try {
    for await (const id of objects.ids()) {
      if (!FILE_ID.test(id)) continue;
      const target = join(out, id);
      if (manifest.get(id)?.ok && existsSync(target)) {
        report.skipped.push(id);
        continue;
      }
      const partial = `${target}.partial`;
      const known = names.get(id);
      try {
        const hash = createHash('sha256');
        let bytes = 0;
        const tap = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            hash.update(chunk);
            bytes += chunk.length;
            callback(null, chunk);
          },
        });
        const decrypt = createObjectDecryptStream({
          fileId: id,
          getDataKey: (header) =>
            keys.unwrapDataKey(id, { keyRef: header.keyRef, wrappedKey: header.wrappedKey }),
        });
        await pipeline(
          await objects.store.getRange(`${PREFIX}${id}`, 0),
          decrypt,
          tap,
          createWriteStream(partial, { mode: 0o600 }),
        );
        const sha256 = hash.digest('hex');
        if (known?.sha256 && known.sha256 !== sha256) {
          throw new Error(
            `the plaintext's SHA-256 ${sha256} differs from the database export's ${known.sha256}`,
          );
        }
        await rename(partial, target);
        const line: ManifestLine = {
          id,
          ok: true,
          sha256,
          bytes,
          ...(known?.filename ? { name: known.filename } : {}),
          ...(known?.versions.length ? { versions: known.versions } : {}),
        };
        await appendFile(manifestPath, `${JSON.stringify(line)}\n`);
        report.recovered.push(id);
      } catch (error) {
        await rm(partial, { force: true });
        const message = (error as Error).message.split('\n')[0]!;
        await appendFile(
          manifestPath,
          `${JSON.stringify({ id, ok: false, error: message } satisfies ManifestLine)}\n`,
        );
        report.failed.push({ id, error: message });
      }
    }
  } finally {
    await objects.close();
    await keys.close();
  }
  return report;
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [from, masterKey, out] = [argument('--from'), argument('--master-key'), argument('--out')];
  if (!from || !masterKey || !out) {
    console.error(
      'Usage: npm run recover -- --from <directory | s3://bucket> --master-key <key file | secret id> --out <dir> [--names <export.json>]',
    );
    process.exit(2);
  }
  recover({ from, masterKey, out, names: argument('--names') }).then(
    async (report) => {
      for (const f of report.failed) console.error(`FAILED ${f.id}: ${f.error}`);
      const size = await stat(join(resolve(out), 'manifest.jsonl')).then(
        (s) => s.size,
        () => 0,
      );
      console.log(
        `${report.recovered.length} recovered, ${report.skipped.length} already recovered (skipped), ` +
          `${report.failed.length} failed; manifest ${join(resolve(out), 'manifest.jsonl')} (${size} bytes)`,
      );
      process.exit(report.failed.length ? 1 : 0);
    },
    (error: unknown) => {
      console.error(`recover could not run: ${(error as Error).message}`);
      process.exit(2);
    },
  );
}
