// The worker pass alone (no network, no database): drives the crypto worker's own EncryptFileHandler.run()
// over a file, as a job would, with in-memory stand-ins for the database, audit log and key provider, so
// the bytes go through exactly the code the worker runs (read the staged upload, decrypting and verifying its
// records -> SHA-1 + SHA-256 -> AES-256-GCM segments -> object store). The plaintext input is staged first, by
// the gateway's own StagingWriter, outside the measured time. Usage: node bench/worker-pass.mjs <file> <discard|local|s3> <workdir>
// (s3: S3_ENDPOINT and S3_BUCKET name an s3rver; S3_PART_SIZE_MIB and S3_QUEUE_SIZE override the store's defaults)
// Prints one JSON line: seconds, bytes, peak RSS (KiB) and the digests the service computed.
import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const [file, sink = 'discard', workdir] = process.argv.slice(2);
if (!file || !workdir) {
  console.error('usage: worker-pass.mjs <file> <discard|local|s3> <workdir>');
  process.exit(2);
}

const common = await import('../dist/libs/common/src/index.js');
const { EncryptFileHandler } = await import('../dist/apps/crypto-worker/src/encrypt/encrypt-file.handler.js');
const { ContentChecks } = await import('../dist/apps/crypto-worker/src/encrypt/taps/content-checks.js');

const size = (await stat(file)).size;
const tempDir = join(workdir, `tmp-${randomUUID()}`);
await mkdir(tempDir, { recursive: true, mode: 0o700 });
// Every staged upload here shares one data key (the stand-in key provider unwraps any wrapped key to it).
const dataKey = randomBytes(32);
const wrapped = { keyRef: 'local:bench', wrappedKey: randomBytes(60) };
const owner = randomUUID();
/** The files table, as far as the handler sees it. */
const rows = new Map();
/** The upload as the gateway leaves it in TEMP_DIR: staging records under the file's data key, a queued row. */
async function stage(source, bytes) {
  const id = randomUUID();
  await pipeline(
    typeof source === 'string'
      ? createReadStream(source, { highWaterMark: 1024 * 1024 })
      : Readable.from([source]),
    common.StagingWriter.create({ path: join(tempDir, id), fileId: id, dataKey: Buffer.from(dataKey) }),
  );
  rows.set(id, {
    id,
    ownerId: owner,
    status: 'queued',
    size: bytes,
    tempPath: id,
    filename: 'bench.bin',
    contentType: 'application/octet-stream',
    clientSha256: null,
    ...wrapped,
  });
  return id;
}
// A worker runs many jobs in one process: its hash threads and type detector are started and its code is
// compiled by the time a large file arrives. One small job first puts this process in that state, so the timed
// run measures the pass, not thread start-up and the JIT's first minutes (BENCH_COLD=1: no warm-up job).
const warmUp =
  process.env.BENCH_COLD === '1' ? null : await stage(randomBytes(8 * 1024 * 1024), 8 * 1024 * 1024);
const fileId = await stage(file, size);

/** Consumes the ciphertext and counts it: the pass with no storage cost at all. */
const discardStore = {
  driver: 'local',
  async put(_key, body, options = {}) {
    let bytes = 0;
    for await (const chunk of body) {
      bytes += chunk.length;
      // What the real stores do once a chunk is written (PutObjectOptions.releaseChunks).
      if (options.releaseChunks) common.releaseBuffer(chunk);
    }
    return { size: bytes };
  },
  async abortIncomplete() {
    return 0;
  },
  async delete() {},
  async stat() {
    return null;
  },
  async getRange() {
    throw new Error('not stored');
  },
  async check() {},
};
/** `s3`: the S3 store on S3_ENDPOINT (an s3rver the caller started), bucket S3_BUCKET, s3rver's keys. */
const s3Store = () =>
  new common.S3ObjectStore({
    bucket: process.env.S3_BUCKET ?? 'tess-bench',
    region: 'us-east-1',
    endpoint: process.env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    ...(process.env.S3_PART_SIZE_MIB ? { partSize: Number(process.env.S3_PART_SIZE_MIB) * 1024 * 1024 } : {}),
    ...(process.env.S3_QUEUE_SIZE ? { queueSize: Number(process.env.S3_QUEUE_SIZE) } : {}),
  });
const store =
  sink === 'local'
    ? new common.LocalObjectStore({ root: join(workdir, `objects-${fileId}`) })
    : sink === 's3'
      ? s3Store()
      : discardStore;

let stored = null;
const files = {
  async findById(id) {
    const row = rows.get(id);
    return row ? { ...row } : null;
  },
  async claimForProcessing(id) {
    const row = { ...rows.get(id), status: 'processing' };
    rows.set(id, row);
    return { ...row };
  },
  async markStored(id, facts) {
    if (id === fileId) stored = facts;
    rows.set(id, { ...rows.get(id), status: 'stored', ...facts });
    // What FileRepository.markStored answers for a first upload: version 1 of itself.
    return { fileId: id, version: 1 };
  },
};
const keys = {
  mode: 'envelope',
  async createDataKey() {
    throw new Error('not used: the staged upload has its data key');
  },
  async recordHashes() {},
  async destroyDataKey() {},
  async unwrapDataKey() {
    // The handler wipes the key it is given once done.
    return Buffer.from(dataKey);
  },
  async check() {},
};

/** Any other method of a stand-in, and any dependency this script does not know: a harmless no-op. */
function lenient(target = {}) {
  return new Proxy(target, {
    get(object, property) {
      if (property in object) return object[property];
      if (property === 'then') return undefined;
      return lenient(() => undefined);
    },
    apply() {
      return lenient(() => undefined);
    },
  });
}

// Build the service from its own constructor metadata, so new dependencies do not break the benchmark.
const config = {
  tempDir,
  worker: { concurrency: 2 },
  // The content checks as `npm start` runs them (the type check on, scanning off), or with scanning on when
  // the bench passes SCAN_MODE=required and a CLAMD_URL.
  ...common.loadConfig({
    DATA_DIR: workdir,
    ...(process.env.SCAN_MODE ? { SCAN_MODE: process.env.SCAN_MODE, CLAMD_URL: process.env.CLAMD_URL } : {}),
  }),
};
config.tempDir = tempDir;
const checks = new ContentChecks(config, new common.TessMetrics('crypto-worker'));
const byToken = new Map([
  [common.TESS_CONFIG, config],
  [common.OBJECT_STORE, store],
  [common.KEY_PROVIDER, keys],
]);
const byType = new Map([
  [common.FileRepository, files],
  [common.AuditRepository, { async record() {} }],
  [ContentChecks, checks],
]);
const types = Reflect.getMetadata('design:paramtypes', EncryptFileHandler) ?? [];
const injected = Reflect.getMetadata('self:paramtypes', EncryptFileHandler) ?? [];
const stubbed = [];
const args = types.map((type, index) => {
  const token = injected.find((entry) => entry.index === index)?.param;
  if (token !== undefined && byToken.has(token)) return byToken.get(token);
  if (byType.has(type)) return lenient(byType.get(type));
  try {
    return new type();
  } catch {
    stubbed.push(type?.name ?? String(token));
    return lenient();
  }
});
const service = new EncryptFileHandler(...args);
const jobFor = (id) => ({
  id,
  name: 'encrypt-file',
  data: { fileId: id, ownerId: owner },
  attemptsMade: 0,
  async updateProgress() {},
  async log() {},
});
if (warmUp) await service.run(jobFor(warmUp));

/** CPU seconds (user + system) of each thread of this process, by "name:tid" (Linux /proc; {} elsewhere). */
function threadCpu() {
  const out = {};
  let tids = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      out[`${stat.slice(stat.indexOf('(') + 1, close)}:${tid}`] =
        (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** CPU seconds each thread spent between two threadCpu() snapshots (threads under 10 ms left out). */
function threadCpuSince(before, after) {
  const spent = {};
  for (const [thread, seconds] of Object.entries(after)) {
    const delta = seconds - (before[thread] ?? 0);
    if (delta >= 0.01) spent[thread] = Number(delta.toFixed(2));
  }
  return spent;
}

const baseline = process.resourceUsage().maxRSS;
const threadsBefore = threadCpu();
const cpuBefore = process.cpuUsage();
const hrStart = process.hrtime.bigint();
const started = performance.now();
const result = await service.run(jobFor(fileId));
const seconds = (performance.now() - started) / 1000;
const hrEnd = process.hrtime.bigint();
const cpu = process.cpuUsage(cpuBefore);
const threadCpuSeconds = threadCpuSince(threadsBefore, threadCpu());
const maxRssKiB = process.resourceUsage().maxRSS;
// Shut down what the service started (the type detector's thread, the hash threads) as Nest would at
// application shutdown; a live thread would keep this process from exiting.
// (A no-op on the lenient stand-ins.)
for (const dependency of args) await dependency?.onApplicationShutdown?.();
await rm(tempDir, { recursive: true, force: true });
if (sink === 'local') await rm(join(workdir, `objects-${fileId}`), { recursive: true, force: true });
if (sink === 's3') {
  for (const id of rows.keys()) await store.delete(common.objectKeyFor(id));
  await store.close();
}
if (!stored) throw new Error(`the service did not store the file: ${JSON.stringify(result)}`);
console.log(
  JSON.stringify({
    bytes: size,
    seconds,
    maxRssKiB,
    baselineRssKiB: baseline,
    sha1: result.sha1,
    sha256: result.sha256,
    encryptedSize: result.encryptedSize,
    // CPU time of the whole process (all threads) during the run, and the run's window on the monotonic
    // clock V8 CPU profiles use (microseconds), so a profile can be cut to the run alone.
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    // The same CPU time by thread: the main thread, the hash threads (tess-hash), libuv's pool (reads).
    threadCpuSeconds,
    windowUs: [Number(hrStart / 1000n), Number(hrEnd / 1000n)],
    stubbed,
  }),
);
