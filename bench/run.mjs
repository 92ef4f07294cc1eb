// `npm run bench`: measures TESS against the crypto ceiling of this machine and against the tools people
// use instead, all in one run (so ratios hold on a noisy machine), loopback only, and writes
// docs/benchmarks.md with its charts. Every database, Redis key, temp file and child process it creates
// is removed at the end, also on failure or Ctrl+C. Knobs (environment): BENCH_SIZE_MIB (512),
// BENCH_SMALL_FILES (1000), BENCH_SMALL_PER_REQUEST (10), BENCH_REPEATS (3), BENCH_TIMEOUT_MIN (25), BENCH_SCALE_FILES (16), BENCH_SCALE_MIB (64),
// BENCH_BURST_FILES (500), BENCH_BURST_KIB (256), TEST_DATABASE_URL, TEST_REDIS_URL;
// BENCH_PHASES=ceiling,pass,profile,ingest,footprint,local,small,tus,s3,listing,scale,burst runs only those and prints the results;
// BENCH_PROFILE_DIR=<dir> makes the gateway and worker processes write CPU profiles there; BENCH_PERF=1 gives them
// JIT symbol maps for `perf record` (CPU time, not wall-clock samples);
// BENCH_RUNTIME_ENV=off starts them without the settings of scripts/runtime-env.mjs (to re-measure those);
// BENCH_S3_PART_SIZE (e.g. 16MiB) sets the TESS worker's S3_PART_SIZE on s3rver (to compare part sizes).
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomFillSync, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import * as tus from 'tus-js-client';
import * as runtimeEnv from '../scripts/runtime-env.mjs';
import {
  cpuMsOf,
  createUser,
  download,
  freePort,
  killAll,
  MB,
  MiB,
  machineTicks,
  mapLimit,
  median,
  memoryOf,
  PeakRss,
  ProcessSetCpu,
  percentile,
  postFiles,
  ROOT,
  removeWorld,
  request,
  runJson,
  startProcess,
  tail,
  waitForHttp,
} from './lib.mjs';
import { summarizeProfile, writeReport } from './report.mjs';

const execFileP = promisify(execFile);
// The AWS SDK warns once per process that its 2027 releases will need Node 22: not news for this report.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning?.name ?? rest[0]?.type ?? rest[0]).includes('NodeVersionSupportWarning')) return;
  if (String(warning).includes('AWS SDK for JavaScript (v3)')) return;
  emitWarning(warning, ...rest);
};
const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 512);
const RUNTIME_ENV_OFF = process.env.BENCH_RUNTIME_ENV === 'off';
const GATEWAY_ENV = RUNTIME_ENV_OFF ? {} : runtimeEnv.GATEWAY_ENV;
const GATEWAY_NODE_ARGS = RUNTIME_ENV_OFF ? [] : runtimeEnv.GATEWAY_NODE_ARGS;
const WORKER_ENV = RUNTIME_ENV_OFF ? {} : runtimeEnv.WORKER_ENV;
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 1000);
/** Files per multipart POST in the second small-file row (the first, the target, sends one per request). */
const SMALL_PER_REQUEST = Number(process.env.BENCH_SMALL_PER_REQUEST ?? 10);
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
/** The quiet spell before section 3's "after a pause" upload. */
const IDLE_BEFORE_MS = 15_000;
const TIMEOUT_MIN = Number(process.env.BENCH_TIMEOUT_MIN ?? 25);
/** Only these phases (comma-separated keys of PHASES below); the report is then printed, not written. */
/** When set, the gateway and worker processes write V8 CPU profiles (--cpu-prof) into this directory. */
const PROFILE_ARGS = [
  ...(process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []),
  // BENCH_PERF=1: JIT symbol maps (/tmp/perf-PID.map) for a `perf record` of the run, which samples CPU
  // time (the V8 profiler samples wall-clock time, so a preempted thread's waits look like work).
  // V8's own log, which that flag turns on, goes to one file outside the tree.
  ...(process.env.BENCH_PERF
    ? [
        '--perf-basic-prof-only-functions',
        '--no-logfile-per-isolate',
        `--logfile=${join(os.tmpdir(), 'tess-bench-v8.log')}`,
      ]
    : []),
];
const ONLY = process.env.BENCH_PHASES
  ? new Set(process.env.BENCH_PHASES.split(',').map((p) => p.trim()))
  : null;
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'correct horse battery staple';
const BUCKET = 'tess-bench';
const GATEWAY = 'dist/apps/gateway/src/main.js';
const WORKER = 'dist/apps/crypto-worker/src/main.js';

const results = { errors: {}, notes: [] };
const cleanups = [];
let workdir;

function log(message) {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const mbps = (bytes, seconds) => bytes / MB / seconds;

let stopping = false;

/** Runs one phase; a failure is recorded in the report and the run goes on with the next phase. */
async function phase(name, fn, ...keys) {
  if (stopping || (ONLY && keys.length && !keys.some((key) => ONLY.has(key)))) return;
  log(`${name}...`);
  const started = performance.now();
  try {
    await fn();
    if (stopping) return;
    log(`${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    if (stopping) return;
    results.errors[name] = (error instanceof Error ? error.stack || error.message : String(error)).slice(
      0,
      4000,
    );
    log(`${name} FAILED: ${error instanceof Error ? error.message.split('\n')[0] : error}`);
  }
}

async function cleanup() {
  await killAll();
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (error) {
      log(`cleanup: ${error instanceof Error ? error.message : error}`);
    }
  }
  cleanups.length = 0;
  if (workdir) await rm(workdir, { recursive: true, force: true });
}

async function abort(reason) {
  if (stopping) return;
  stopping = true;
  log(`${reason}: cleaning up`);
  await cleanup();
  process.exit(1);
}
process.on('SIGINT', () => void abort('interrupted'));
process.on('SIGTERM', () => void abort('terminated'));
setTimeout(() => void abort(`still running after ${TIMEOUT_MIN} min`), TIMEOUT_MIN * 60_000).unref();

/**
 * Random bytes behind a short text prefix. Plain random bytes are sometimes a file type: about 1 in 2,300
 * buffers of 4 KiB matches a signature that file-type knows (an MPEG frame, a BMP), and 1 in 50,000 starts
 * with "MZ", which TESS's content check refuses as a Windows executable (BLOCKED_TYPES): a bench of a few
 * thousand files would now and then see one refused. No signature starts with this prefix.
 */
const CONTENT_PREFIX = Buffer.from('tess bench data\n', 'ascii');

function randomContent(buffer) {
  randomFillSync(buffer);
  CONTENT_PREFIX.copy(buffer, 0, 0, Math.min(CONTENT_PREFIX.length, buffer.length));
  return buffer;
}

/** A file of random content (randomContent) written in 1 MiB chunks; returns its path, size and digests. */
async function makeFile(name, bytes) {
  const path = join(workdir, name);
  const handle = await open(path, 'w');
  const sha1 = createHash('sha1');
  const sha256 = createHash('sha256');
  const chunk = Buffer.allocUnsafe(MiB);
  for (let left = bytes; left > 0; left -= MiB) {
    const piece = chunk.subarray(0, Math.min(MiB, left));
    if (left === bytes) randomContent(piece);
    else randomFillSync(piece);
    sha1.update(piece);
    sha256.update(piece);
    await handle.write(piece);
  }
  await handle.close();
  return { path, size: bytes, sha1: sha1.digest('hex'), sha256: sha256.digest('hex'), filename: name };
}

async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  const { stdout: opensslVersion } = await execFileP('openssl', ['version']);
  const rclone = await execFileP('rclone', ['version'])
    .then(({ stdout }) => stdout.split('\n')[0])
    .catch(() => null);
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 1024 ** 3,
    kernel: os.release(),
    node: process.version,
    openssl: opensslVersion.trim(),
    rclone,
    aesni: /\baes\b/.test(flags),
    shani: /\bsha_ni\b/.test(flags),
    loadBefore: os.loadavg(),
  };
}

// --- 1. ceiling ----------------------------------------------------------------------------------------

async function opensslSpeed(algorithm, { decrypt = false, processes = 1 } = {}) {
  const { stdout } = await execFileP('openssl', [
    'speed',
    ...(decrypt ? ['-decrypt'] : []),
    // -multi N: N processes at once, one line with their total.
    ...(processes > 1 ? ['-multi', String(processes)] : []),
    '-evp',
    algorithm,
    '-bytes',
    '16384',
    '-seconds',
    '2',
    '-mr',
  ]);
  const match = /^\+F:\d+:[^:]+:([\d.]+)/m.exec(stdout);
  if (!match) throw new Error(`openssl speed ${algorithm}: no result in\n${tail(stdout)}`);
  return Number(match[1]) / MB;
}

async function ceiling() {
  // Four primitives touch every byte once each: the staging records are decrypted (AES-256-GCM), the
  // plaintext hashed twice and encrypted again into the object's segments.
  const gcmDecrypt = await opensslSpeed('aes-256-gcm', { decrypt: true });
  const gcm = await opensslSpeed('aes-256-gcm');
  const sha1 = await opensslSpeed('sha1');
  const sha256 = await opensslSpeed('sha256');
  // What every core together delivers (a VM's vCPUs may share physical cores or be throttled when all are
  // busy): the bound on any pass that spreads the primitives over threads.
  const cores = os.cpus().length;
  const gcmAllCores = cores > 1 ? await opensslSpeed('aes-256-gcm', { processes: cores }) : gcm;
  results.ceiling = {
    gcmDecrypt,
    gcm,
    sha1,
    sha256,
    gcmAllCores,
    onePass: 1 / (1 / gcmDecrypt + 1 / gcm + 1 / sha1 + 1 / sha256),
    threePrimitives: 1 / (1 / gcm + 1 / sha1 + 1 / sha256),
    pageCache: await pageCacheWrites(),
  };
}

/**
 * How fast this machine puts SIZE_MIB of new writes into the page cache (no fsync: the copy alone), into
 * memory the page cache has not held lately (a second file while the first is kept) and into memory freed a
 * moment before (after deleting both). On a VM whose host backs guest memory lazily and takes freed memory
 * back (a balloon with free page reporting), the first costs the host a fault per page: measured here on
 * 2026-12-08, 350 MB/s against 4.8 GB/s, and memory freed for 15 s or more already 1.8-1.9 GB/s. Every
 * phase that writes files (staging, objects, s3rver's parts) pays whichever it gets, so rows that write
 * swing with it; this row shows how much in the same run.
 */
async function pageCacheWrites() {
  const chunk = Buffer.alloc(MiB, 0xa5);
  const paths = [0, 1, 2].map((i) => join(workdir, `page-cache-${i}.bin`));
  const write = async (path) => {
    const handle = await open(path, 'w');
    try {
      const started = performance.now();
      for (let i = 0; i < SIZE_MIB; i++) await handle.write(chunk);
      return mbps(SIZE_MIB * MiB, (performance.now() - started) / 1000);
    } finally {
      await handle.close();
    }
  };
  try {
    await write(paths[0]);
    const notRecentlyUsed = await write(paths[1]);
    await Promise.all(paths.slice(0, 2).map((path) => rm(path)));
    const justFreed = await write(paths[2]);
    return { notRecentlyUsed, justFreed };
  } finally {
    await Promise.all(paths.map((path) => rm(path, { force: true })));
  }
}

// --- 2 and 7. worker pass ----------------------------------------------------------------------------------

function workerPass(file, sink, nodeArgs = [], env = {}) {
  return runJson('worker-pass', join(ROOT, 'bench', 'worker-pass.mjs'), {
    args: [file.path, sink, workdir],
    env: { ...WORKER_ENV, NODE_ENV: 'production', ...env },
    nodeArgs,
  }).then((r) => {
    if (r.sha256 !== file.sha256)
      throw new Error(`worker pass computed ${r.sha256}, the file is ${file.sha256}`);
    return {
      ...r,
      mbps: mbps(r.bytes, r.seconds),
      peakMiB: r.maxRssKiB / 1024,
      baseMiB: r.baselineRssKiB / 1024,
      threads: threadKinds(r.threadCpuSeconds ?? {}),
    };
  });
}

/**
 * A pass's CPU seconds by kind of thread (from /proc, see bench/worker-pass.mjs): the main thread, each
 * hash thread (largest first), libuv's pool (file reads and writes) and V8's helpers (garbage collection).
 */
function threadKinds(byThread) {
  const kinds = { main: 0, hash: [], libuv: 0, v8: 0, other: 0 };
  for (const [thread, seconds] of Object.entries(byThread)) {
    const name = thread.slice(0, thread.lastIndexOf(':'));
    if (name === 'MainThread') kinds.main += seconds;
    else if (name === 'tess-hash') kinds.hash.push(seconds);
    else if (name.startsWith('libuv')) kinds.libuv += seconds;
    else if (name.startsWith('V8')) kinds.v8 += seconds;
    else kinds.other += seconds;
  }
  kinds.hash.sort((a, b) => b - a);
  return kinds;
}

/** The median of each kind of thread over runs (each hash thread by rank). */
function medianThreads(runs) {
  const of = (pick) => median(runs.map((r) => pick(r.threads)).filter((v) => v !== undefined));
  const hashThreads = Math.max(0, ...runs.map((r) => r.threads.hash.length));
  return {
    main: of((t) => t.main),
    hash: Array.from({ length: hashThreads }, (_, i) => of((t) => t.hash[i])),
    libuv: of((t) => t.libuv),
    v8: of((t) => t.v8),
    other: of((t) => t.other),
  };
}

async function repeated(times, fn) {
  const runs = [];
  for (let i = 0; i < times; i++) runs.push(await fn(i));
  return runs;
}

function summarize(runs) {
  return {
    runs: runs.length,
    mbps: median(runs.map((r) => r.mbps)),
    minMbps: Math.min(...runs.map((r) => r.mbps)),
    maxMbps: Math.max(...runs.map((r) => r.mbps)),
    seconds: median(runs.map((r) => r.seconds)),
    peakMiB: Math.max(...runs.map((r) => r.peakMiB)),
    baseMiB: median(runs.map((r) => r.baseMiB ?? 0)),
    cpuSeconds: median(runs.map((r) => r.cpuSeconds ?? Number.NaN)),
    endpointCpuSeconds: median(runs.map((r) => r.endpointCpuSeconds ?? Number.NaN)),
  };
}

async function workerPasses(files) {
  const big = files.at(-1);
  const discard = await repeated(REPEATS, () => workerPass(big, 'discard'));
  const local = await repeated(REPEATS, () => workerPass(big, 'local'));
  // The same pass as the first job of a fresh process (threads starting, code not yet compiled).
  const cold = await repeated(REPEATS, () => workerPass(big, 'discard', [], { BENCH_COLD: '1' }));
  results.workerPass = {
    discard: { ...summarize(discard), threads: medianThreads(discard) },
    local: { ...summarize(local), threads: medianThreads(local) },
    cold: { ...summarize(cold), threads: medianThreads(cold) },
  };
  results.workerPass.scanning = await scanningPasses(big);
  results.scaling = [];
  for (const file of files) {
    const runs =
      file === big
        ? null
        : await repeated(REPEATS, () => workerPass(file, 'discard')).then((r) => summarize(r));
    results.scaling.push({ mib: file.size / MiB, ...(runs ?? results.workerPass.discard) });
  }
}

/**
 * The same pass with malware scanning on: a private clamd (Debian's clamav-daemon) on loopback with the test
 * signature database the tests use (test/support/clamav; no network, so not the official database: clamd's
 * own matching cost grows with its database, the protocol's and TESS's do not), SCAN_MODE=required. clamd's
 * CPU is measured apart from the worker's. Skipped, with the reason in the report, when clamd is missing.
 */
async function scanningPasses(big) {
  const clamdBin = '/usr/sbin/clamd';
  if (!existsSync(clamdBin)) return { skipped: `${clamdBin} is missing (apt-get install clamav-daemon)` };
  const dir = await mkdtemp(join(workdir, 'clamd-'));
  const port = await freePort();
  const conf = join(dir, 'clamd.conf');
  await writeFile(
    conf,
    [
      'Foreground yes',
      `LogFile ${join(dir, 'clamd.log')}`,
      `TemporaryDirectory ${dir}`,
      `DatabaseDirectory ${join(ROOT, 'test', 'support', 'clamav')}`,
      'TCPAddr 127.0.0.1',
      `TCPSocket ${port}`,
      // clamd's ceiling (4 GB); the bench file must fit whole, or clamd refuses it.
      'StreamMaxLength 4000M',
      'SelfCheck 0',
      '',
    ].join('\n'),
  );
  const clamd = startProcess('clamd', null, { command: [clamdBin, '-c', conf] });
  try {
    const deadline = Date.now() + 60_000;
    while (!(await clamdAnswers(port))) {
      if (clamd.status() || Date.now() > deadline)
        throw new Error(`clamd did not start\n${tail(clamd.output())}`);
      await sleep(200);
    }
    const runs = await repeated(REPEATS, async () => {
      const before = await cpuMsOf(clamd.pid);
      const run = await workerPass(big, 'discard', [], {
        SCAN_MODE: 'required',
        CLAMD_URL: `tcp://127.0.0.1:${port}`,
      });
      return { ...run, endpointCpuSeconds: ((await cpuMsOf(clamd.pid)) - before) / 1000 };
    });
    return summarize(runs);
  } finally {
    await clamd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** True once clamd answers PING (its documented `zPING\0` -> `PONG`). */
function clamdAnswers(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(answer.startsWith('PONG')));
    socket.end('zPING\0');
  });
}

/** CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread. */
function profileName(file, index) {
  const thread = file.split('.')[4];
  return thread === '0' || (thread === undefined && index === 0)
    ? 'main thread'
    : `worker thread ${thread ?? index}`;
}

async function profileWorkerPass(big) {
  const dir = join(workdir, 'profile');
  await mkdir(dir, { recursive: true });
  const run = await workerPass(big, 'discard', ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const profiles = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.cpuprofile')).sort()) {
    const profile = JSON.parse(await readFile(join(dir, name), 'utf8'));
    profiles.push(summarizeProfile(profile, profileName(name, profiles.length), run.windowUs));
  }
  results.profile = { mbps: run.mbps, profiles };
}

// --- memory floor: what loading the code costs -------------------------------------------------------------

const FOOTPRINT_MODULES = [
  ['Node.js alone', null],
  ['@nestjs/core + @nestjs/platform-express', '@nestjs/platform-express'],
  ['@nestjs/swagger', '@nestjs/swagger'],
  ['@aws-sdk/client-s3', '@aws-sdk/client-s3'],
  ['typeorm + pg', 'typeorm'],
  ['libs/common (dist index)', '../dist/libs/common/src/index.js'],
  ['gateway app (app.factory)', '../dist/apps/gateway/src/app.factory.js'],
  ['crypto worker (worker.module)', '../dist/apps/crypto-worker/src/worker.module.js'],
];

async function footprint() {
  results.footprint = [];
  for (const [label, module] of FOOTPRINT_MODULES) {
    const r = await runJson('footprint', join(ROOT, 'bench', 'footprint.mjs'), {
      args: module ? [module] : [],
      nodeArgs: ['--expose-gc'],
    });
    results.footprint.push({ label, ...r });
  }
}

// --- ingest baseline ---------------------------------------------------------------------------------------

async function ingestBaseline(big) {
  const dir = join(workdir, 'ingest');
  await mkdir(dir, { recursive: true });
  const server = startProcess('bare-ingest', join(ROOT, 'bench', 'ingest-server.mjs'), { args: [dir] });
  try {
    const port = JSON.parse((await server.waitForOutput(/\{"port":\d+\}/))[0]).port;
    const rss = new PeakRss([server]);
    await rss.start();
    const runs = await repeated(REPEATS, async () => {
      const res = await postFiles(`http://127.0.0.1:${port}/`, [big]);
      if (res.status !== 202) throw new Error(`bare server answered ${res.status}: ${res.text}`);
      return { seconds: res.ms / 1000, mbps: mbps(big.size, res.ms / 1000), peakMiB: 0 };
    });
    const peaks = await rss.stop();
    results.ingestBaseline = {
      ...summarize(runs),
      peakMiB: peaks['bare-ingest'],
      cpuSeconds: rss.cpuMs['bare-ingest'] / 1000 / runs.length,
    };
  } finally {
    await server.stop();
  }
}

// --- TESS processes ------------------------------------------------------------------------------------------

/** A private world (database, Redis prefix, data directory) like test/support/test-env.ts; removed at the end. */
async function tessEnv(label, overrides = {}) {
  const id = randomBytes(4).toString('hex');
  const database = `tess_bench_${id}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  const prefix = `tess-bench-${id}`;
  const dataDir = join(workdir, `data-${label}-${id}`);
  cleanups.push(() => removeWorld({ adminUrl: ADMIN_URL, redisUrl: REDIS_URL, database, prefix }));
  const port = await freePort();
  return {
    label,
    base: `http://127.0.0.1:${port}`,
    databaseUrl: url.toString(),
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: url.toString(),
      REDIS_URL,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      MAX_FILE_SIZE: '1GiB',
      WORKER_HEALTH_PORT: '0',
      ...overrides,
    },
  };
}

async function startTess(world, workers = 1) {
  const gateway = startProcess('gateway', join(ROOT, GATEWAY), {
    env: { ...world.env, ...GATEWAY_ENV },
    nodeArgs: [...GATEWAY_NODE_ARGS, ...PROFILE_ARGS],
  });
  await waitForHttp(`${world.base}/readyz`, 90_000, gateway);
  const started = [];
  for (let i = 1; i <= workers; i++) started.push(await startWorker(world, `worker-${i}`));
  // Resident memory once started and idle: the floor under every peak below.
  await sleep(500);
  results.idle ??= {};
  results.idle[world.label] = {
    gatewayMiB: ((await memoryOf(gateway.pid))?.rss ?? NaN) / 1024,
    workerMiB: started.length ? ((await memoryOf(started[0].pid))?.rss ?? NaN) / 1024 : NaN,
  };
  // Named, so the CPU of its backends (polling rows) is not counted as the system's (tessBackends).
  const db = new pg.Pool({ connectionString: world.databaseUrl, max: 2, application_name: 'tess-bench' });
  cleanups.push(() => db.end());
  return { gateway, workers: started, db, base: world.base };
}

async function startWorker(world, name) {
  const worker = startProcess(name, join(ROOT, WORKER), {
    env: { ...world.env, ...WORKER_ENV },
    nodeArgs: PROFILE_ARGS,
  });
  await worker.waitForOutput(/Processing queue/, 90_000);
  return worker;
}

async function stopTess(tess) {
  await Promise.all([tess.gateway.stop(), ...tess.workers.map((w) => w.stop())]);
}

const ROW_SQL = `SELECT id, status, error, size, sha256,
  (extract(epoch FROM created_at) * 1000)::float8 AS created,
  (extract(epoch FROM processing_started_at) * 1000)::float8 AS started,
  (extract(epoch FROM stored_at) * 1000)::float8 AS stored
  FROM files WHERE id = ANY($1::uuid[])`;

/** How far `ids` are: stored ones, and the first that ended otherwise (its id), in one small row. */
const PROGRESS_SQL = `SELECT count(*) FILTER (WHERE status = 'stored')::int AS stored,
  (array_agg(id) FILTER (WHERE status IN ('failed', 'corrupt', 'rejected', 'infected')))[1] AS failed
  FROM files WHERE id = ANY($1::uuid[])`;

/**
 * Waits until every row of `ids` is stored and returns the rows. Polls a count, not the rows: reading a
 * thousand rows every 100 ms would cost this client (on the same cores as TESS) more than the files do.
 */
async function waitStored(tess, ids, timeoutMs = 300_000, intervalMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const {
      rows: [progress],
    } = await tess.db.query(PROGRESS_SQL, [ids]);
    if (progress.failed) {
      const {
        rows: [failed],
      } = await tess.db.query(ROW_SQL, [[progress.failed]]);
      throw new Error(`file ${failed.id} ended ${failed.status}: ${failed.error}`);
    }
    if (progress.stored === ids.length) return (await tess.db.query(ROW_SQL, [ids])).rows;
    if (Date.now() > deadline) {
      const { rows: waiting } = await tess.db.query(
        `SELECT id, status, attempts, error FROM files WHERE id = ANY($1::uuid[]) AND status <> 'stored' LIMIT 5`,
        [ids],
      );
      // What the processes said about them (their last 256 KiB of output), to tell a lost job from a stuck one.
      const said = [tess.gateway, ...tess.workers].flatMap((proc) =>
        proc
          .output()
          .split('\n')
          .filter((line) => waiting.some((row) => line.includes(row.id)))
          .map((line) => `${proc.name}: ${line}`),
      );
      throw new Error(
        `${ids.length - progress.stored} of ${ids.length} files not stored after ${timeoutMs} ms: ${JSON.stringify(waiting)}\n${said.join('\n')}`,
      );
    }
    await sleep(intervalMs);
  }
}

/**
 * Lets the previous run finish before the next one starts: writes back what it left dirty in the page
 * cache (so a run's fsyncs do not pay for the previous contender's writes), then waits until the machine
 * is quiet (below 15 % busy over 250 ms), since s3rver and the kernel keep working after a contender returns.
 */
async function settle(timeoutMs = 15_000) {
  await execFileP('sync');
  const deadline = Date.now() + timeoutMs;
  for (let before = await machineTicks(); Date.now() < deadline; ) {
    await sleep(250);
    const after = await machineTicks();
    const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    if (busy < 0.15) return;
    before = after;
  }
}

/**
 * Deletes a measured upload (its object, key and row) before the next run, and returns the run. Every
 * repeated run then writes its staging file and object into memory the run before it has just freed, as a
 * long-running server recycles its page cache, and as the bare pass does (it removes its files after each
 * run). Kept, the uploads made each run write into memory the page cache had not held, which on this VM is
 * a host fault per page (section 1): the live worker's pass took 2.0 s that way and 0.8-1.2 s with this.
 */
async function removedAfter(tess, token, run) {
  await deleteFiles(tess, token, [run.id]);
  return run;
}

/** One file through the gateway until `stored`: ingest time, end-to-end time, peak RSS of each process. */
async function endToEnd(tess, token, file, endpoint = null) {
  await settle();
  const rss = new PeakRss([tess.gateway, ...tess.workers, ...(endpoint ? [endpoint] : [])]);
  await rss.start();
  const t0 = Date.now();
  const client = process.cpuUsage();
  const res = await postFiles(`${tess.base}/api/v1/uploads`, [file], { Authorization: `Bearer ${token}` });
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${res.text.slice(0, 500)}`);
  const id = JSON.parse(res.text).files[0].id;
  const [row] = await waitStored(tess, [id]);
  const peaks = await rss.stop();
  const clientCpu = process.cpuUsage(client);
  const workerCpu = tess.workers.reduce((sum, w) => sum + rss.cpuMs[w.name], 0);
  if (row.sha256 !== file.sha256) throw new Error(`stored SHA-256 ${row.sha256}, expected ${file.sha256}`);
  const seconds = (row.stored - t0) / 1000;
  return {
    id,
    bytes: file.size,
    ingestSeconds: res.ms / 1000,
    ingestMbps: mbps(file.size, res.ms / 1000),
    seconds,
    mbps: mbps(file.size, seconds),
    // From the 202 (the last byte received and the upload accepted) to stored_at.
    afterLastByteSeconds: (row.stored - t0 - res.ms) / 1000,
    workerSeconds: (row.stored - row.started) / 1000,
    queueSeconds: (row.started - row.created) / 1000,
    gatewayMiB: peaks.gateway,
    workerMiB: Math.max(...tess.workers.map((w) => peaks[w.name])),
    gatewayCpuSeconds: rss.cpuMs.gateway / 1000,
    workerCpuSeconds: workerCpu / 1000,
    endpointCpuSeconds: endpoint ? rss.cpuMs[endpoint.name] / 1000 : undefined,
    // This process: it sends the upload (and polls the row, and samples memory) on the same cores.
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
  };
}

/**
 * Runs `fn` with the follower queue paused (docs/security.md item 40): uploads are not followed while they
 * arrive, exactly as with PIPELINE_MIN_BYTES=0 (a follower that starts after the seal only finds its file
 * taken), on the same processes.
 */
async function withFollowersPaused(world, fn) {
  const queue = new Queue('follow', {
    connection: { url: REDIS_URL },
    prefix: `${world.env.REDIS_PREFIX}:bull`,
  });
  await queue.pause();
  try {
    return await fn();
  } finally {
    await queue.resume();
    await queue.close();
  }
}

function summarizeE2e(runs) {
  const pick = (key) => median(runs.map((r) => r[key]));
  return {
    runs: runs.length,
    seconds: pick('seconds'),
    mbps: pick('mbps'),
    ingestSeconds: pick('ingestSeconds'),
    ingestMbps: pick('ingestMbps'),
    afterLastByteSeconds: pick('afterLastByteSeconds'),
    workerSeconds: pick('workerSeconds'),
    workerMbps: mbps(runs[0].bytes, pick('workerSeconds')),
    queueSeconds: pick('queueSeconds'),
    gatewayMiB: Math.max(...runs.map((r) => r.gatewayMiB)),
    workerMiB: Math.max(...runs.map((r) => r.workerMiB)),
    gatewayCpuSeconds: pick('gatewayCpuSeconds'),
    workerCpuSeconds: pick('workerCpuSeconds'),
    clientCpuSeconds: pick('clientCpuSeconds'),
    endpointCpuSeconds: median(runs.map((r) => r.endpointCpuSeconds ?? Number.NaN)),
  };
}

async function downloads(tess, token, file, id, label) {
  const auth = { Authorization: `Bearer ${token}` };
  const url = `${tess.base}/api/v1/files/${id}/content`;
  const runs = [];
  for (let i = 0; i < Math.min(REPEATS, 2); i++) {
    const rss = new PeakRss([tess.gateway]);
    await rss.start();
    const res = await download(url, auth);
    const peaks = await rss.stop();
    if (res.status !== 200 || res.bytes !== file.size) {
      throw new Error(`download answered ${res.status} with ${res.bytes} of ${file.size} bytes`);
    }
    runs.push({
      seconds: res.ms / 1000,
      mbps: mbps(file.size, res.ms / 1000),
      gatewayMiB: peaks.gateway,
      gatewayCpuSeconds: rss.cpuMs.gateway / 1000,
    });
  }
  const start = Math.floor(file.size / 2);
  const range = { ...auth, Range: `bytes=${start}-${start + MiB - 1}` };
  const latencies = [];
  for (let i = 0; i < 10; i++) {
    const res = await download(url, range);
    if (res.status !== 206 || res.bytes !== MiB)
      throw new Error(`range answered ${res.status}, ${res.bytes} bytes`);
    if (i > 0) latencies.push(res.ms);
  }
  results.download ??= {};
  results.download[label] = {
    seconds: median(runs.map((r) => r.seconds)),
    mbps: median(runs.map((r) => r.mbps)),
    gatewayMiB: Math.max(...runs.map((r) => r.gatewayMiB)),
    gatewayCpuSeconds: median(runs.map((r) => r.gatewayCpuSeconds)),
    rangeMs: median(latencies),
    rangeMinMs: Math.min(...latencies),
    rangeMaxMs: Math.max(...latencies),
    rangeRuns: latencies.length,
  };
}

/** The PID of the Redis server (shared with whatever else uses it: see redisBaseline). */
async function redisPid() {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
  } finally {
    redis.disconnect();
  }
}

/** CPU ms per second the Redis server uses with nothing of this phase running (other users of it). */
async function redisBaseline(pid, ms = 2_000) {
  const before = await cpuMsOf(pid);
  await sleep(ms);
  return ((await cpuMsOf(pid)) - before) / (ms / 1000);
}

/** The PostgreSQL backends serving the TESS processes of this world (not the bench's own pool). */
function tessBackends(tess) {
  return async () => {
    const { rows } = await tess.db.query(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name <> 'tess-bench'",
    );
    return rows.map((r) => r.pid);
  };
}

/**
 * SMALL_FILES files of 16 KiB, `perRequest` to a multipart POST, 8 requests in flight, until all are
 * stored; CPU per file of every process that works for them (gateway, workers, the PostgreSQL backends of
 * this world's database, Redis less its idle baseline, and this client).
 */
async function smallFiles(tess, token, perRequest = 1) {
  const auth = { Authorization: `Bearer ${token}` };
  const bodies = Array.from({ length: SMALL_FILES }, (_, i) => ({
    filename: `small-${perRequest}-${i}.bin`,
    buffer: randomContent(Buffer.allocUnsafe(16 * 1024)),
  }));
  const requests = Array.from({ length: Math.ceil(bodies.length / perRequest) }, (_, i) =>
    bodies.slice(i * perRequest, (i + 1) * perRequest),
  );
  await settle();
  const redis = await redisPid();
  const redisIdle = await redisBaseline(redis);
  const rss = new PeakRss([tess.gateway, ...tess.workers]);
  const postgres = new ProcessSetCpu(tessBackends(tess));
  await Promise.all([rss.start(), postgres.start()]);
  const redisBefore = await cpuMsOf(redis);
  const client = process.cpuUsage();
  const ticks = await machineTicks();
  const t0 = Date.now();
  const accepted = await mapLimit(requests, 8, async (files) => {
    const res = await postFiles(`${tess.base}/api/v1/uploads`, files, auth);
    if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${res.text.slice(0, 300)}`);
    return JSON.parse(res.text).files.map((f) => f.id);
  });
  const uploadedAt = Date.now();
  const rows = await waitStored(tess, accepted.flat(), 600_000, 100);
  const clientCpu = process.cpuUsage(client);
  const peaks = await rss.stop();
  const postgresCpu = await postgres.stop();
  const redisCpu = (await cpuMsOf(redis)) - redisBefore - (redisIdle * (Date.now() - t0)) / 1000;
  const ticksAfter = await machineTicks();
  const latencies = rows.map((r) => r.stored - r.created);
  const last = Math.max(...rows.map((r) => r.stored));
  return {
    files: rows.length,
    perRequest,
    workers: tess.workers.length,
    seconds: (last - t0) / 1000,
    filesPerSecond: rows.length / ((last - t0) / 1000),
    uploadsPerSecond: rows.length / ((uploadedAt - t0) / 1000),
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    maxMs: Math.max(...latencies),
    gatewayMiB: peaks.gateway,
    workerMiB: Math.max(...tess.workers.map((w) => peaks[w.name])),
    machineBusy: (ticksAfter.busy - ticks.busy) / (ticksAfter.total - ticks.total),
    gatewayCpuMsPerFile: rss.cpuMs.gateway / rows.length,
    workerCpuMsPerFile: tess.workers.reduce((sum, w) => sum + rss.cpuMs[w.name], 0) / rows.length,
    postgresCpuMsPerFile: postgresCpu / rows.length,
    redisCpuMsPerFile: Math.max(0, redisCpu) / rows.length,
    redisIdleCpuMsPerSecond: redisIdle,
    clientCpuMsPerFile: (clientCpu.user + clientCpu.system) / 1000 / rows.length,
  };
}

async function localPhase(files) {
  const world = await tessEnv('local');
  const tess = await startTess(world, 1);
  try {
    const token = await createUser(tess.base, `bench_${randomBytes(3).toString('hex')}`, PASSWORD);
    const big = files.at(-1);
    if (!ONLY || ONLY.has('local')) {
      results.e2eScaling = [];
      for (const file of files.slice(0, -1)) {
        results.e2eScaling.push({
          mib: file.size / MiB,
          ...summarizeE2e([await removedAfter(tess, token, await endToEnd(tess, token, file))]),
        });
      }
      // The processes' first large upload is slower (their heaps and buffers grow into memory this VM has
      // not used lately, section 1): measured apart, as what freshly started processes see, so that it
      // does not decide the median of the runs after it.
      results.e2eLocalFirst = summarizeE2e([
        await removedAfter(tess, token, await endToEnd(tess, token, big)),
      ]);
      // The last run's file stays for the downloads.
      const runs = await repeated(REPEATS, (i) =>
        endToEnd(tess, token, big).then((r) => (i < REPEATS - 1 ? removedAfter(tess, token, r) : r)),
      );
      results.e2eLocal = summarizeE2e(runs);
      results.e2eScaling.push({ mib: big.size / MiB, ...results.e2eLocal });
      await downloads(tess, token, big, runs.at(-1).id, 'local');
      await removedAfter(tess, token, runs.at(-1));
      // The same upload without pipelining (its follower held back): the worker starts after the last
      // byte, and the gateway ingests alone, with no follower on the other core. The median of REPEATS
      // runs, like the bare pass it is compared with.
      results.e2eLocalUnpipelined = summarizeE2e(
        await withFollowersPaused(world, () =>
          repeated(REPEATS, () => endToEnd(tess, token, big).then((r) => removedAfter(tess, token, r))),
        ),
      );
      // The same again after a quiet spell, as a server sees the first upload after a pause: V8 sizes the
      // gateway's heap limit by how it was used last, which made this upload run a storm of full
      // collections before the old-generation floor (scripts/runtime-env.mjs GATEWAY_NODE_ARGS).
      await sleep(IDLE_BEFORE_MS);
      results.e2eLocalAfterIdle = summarizeE2e([
        await withFollowersPaused(world, () =>
          endToEnd(tess, token, big).then((r) => removedAfter(tess, token, r)),
        ),
      ]);
    }
    await phase(
      'small files (2 worker processes)',
      async () => {
        tess.workers.push(await startWorker(world, 'worker-2'));
        results.smallFiles = await smallFiles(tess, token);
        results.smallFilesBatched = await smallFiles(tess, token, SMALL_PER_REQUEST);
      },
      'small',
    );
  } finally {
    await stopTess(tess);
  }
}

// --- Resumable uploads: tus in TUS_CHUNK_SIZE chunks against the multipart endpoint ---------------------------

const TUS_CHUNK = 8 * MiB;

/**
 * One upload with tus-js-client (8 MiB PATCHes) as the TESS CLI (scripts/tess-cli.ts) drives it: each chunk
 * read from disk in 1 MiB pieces by its file source.
 */
async function tusSend(base, token, file) {
  const { tusFileReader } = await import('../dist/scripts/tus-file-reader.js');
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(
      { path: file.path },
      {
        endpoint: `${base}/api/v1/tus`,
        fileReader: tusFileReader(),
        headers: { Authorization: `Bearer ${token}` },
        chunkSize: TUS_CHUNK,
        metadata: { filename: file.filename, filetype: 'application/octet-stream', sha256: file.sha256 },
        storeFingerprintForResuming: false,
        retryDelays: null,
        onSuccess: () => resolve({ id: upload.url.split('/').pop(), answeredAt: Date.now() }),
        onError: reject,
      },
    );
    upload.start();
  });
}

/** tus upload until `stored`: upload MB/s (POST to the final PATCH's answer), gateway peak RSS, then to stored. */
async function tusRun(tess, token, file) {
  await settle();
  const rss = new PeakRss([tess.gateway, ...tess.workers]);
  await rss.start();
  const t0 = Date.now();
  const client = process.cpuUsage();
  const { id, answeredAt } = await tusSend(tess.base, token, file);
  const uploadPeaks = await rss.stop();
  const clientCpu = process.cpuUsage(client);
  const [row] = await waitStored(tess, [id]);
  if (row.sha256 !== file.sha256) throw new Error(`stored SHA-256 ${row.sha256}, expected ${file.sha256}`);
  const { rows } = await tess.db.query('SELECT client_verified FROM files WHERE id = $1', [id]);
  if (rows[0]?.client_verified !== true) throw new Error(`file ${id} is not clientVerified`);
  const uploadSeconds = (answeredAt - t0) / 1000;
  return {
    id,
    uploadSeconds,
    uploadMbps: mbps(file.size, uploadSeconds),
    toStoredSeconds: (row.stored - answeredAt) / 1000,
    seconds: (row.stored - t0) / 1000,
    gatewayMiB: uploadPeaks.gateway,
    gatewayCpuSeconds: rss.cpuMs.gateway / 1000,
    workerCpuSeconds: tess.workers.reduce((sum, w) => sum + rss.cpuMs[w.name], 0) / 1000,
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
  };
}

/** The same file over tus (8 MiB chunks) and the multipart endpoint, alternating, on one TESS. */
async function tusPhase(big) {
  const world = await tessEnv('tus', { TUS_CHUNK_SIZE: String(TUS_CHUNK) });
  const tess = await startTess(world, 1);
  try {
    const token = await createUser(tess.base, `bench_${randomBytes(3).toString('hex')}`, PASSWORD);
    const tusRuns = [];
    const multipartRuns = [];
    for (let i = 0; i < Math.min(REPEATS, 2); i++) {
      multipartRuns.push(await removedAfter(tess, token, await endToEnd(tess, token, big)));
      tusRuns.push(await removedAfter(tess, token, await tusRun(tess, token, big)));
    }
    const pick = (runs, key) => median(runs.map((r) => r[key]));
    const multipartMbps = pick(multipartRuns, 'ingestMbps');
    results.tus = {
      runs: tusRuns.length,
      mib: big.size / MiB,
      chunkMiB: TUS_CHUNK / MiB,
      uploadMbps: pick(tusRuns, 'uploadMbps'),
      multipartMbps,
      ratio: pick(tusRuns, 'uploadMbps') / multipartMbps,
      seconds: pick(tusRuns, 'seconds'),
      multipartSeconds: pick(multipartRuns, 'seconds'),
      toStoredSeconds: pick(tusRuns, 'toStoredSeconds'),
      multipartToStoredSeconds: median(multipartRuns.map((r) => r.seconds - r.ingestSeconds)),
      gatewayMiB: Math.max(...tusRuns.map((r) => r.gatewayMiB)),
      multipartGatewayMiB: Math.max(...multipartRuns.map((r) => r.gatewayMiB)),
      gatewayCpuSeconds: pick(tusRuns, 'gatewayCpuSeconds'),
      multipartGatewayCpuSeconds: pick(multipartRuns, 'gatewayCpuSeconds'),
      workerCpuSeconds: pick(tusRuns, 'workerCpuSeconds'),
      multipartWorkerCpuSeconds: pick(multipartRuns, 'workerCpuSeconds'),
      clientCpuSeconds: pick(tusRuns, 'clientCpuSeconds'),
      multipartClientCpuSeconds: pick(multipartRuns, 'clientCpuSeconds'),
      idleGatewayMiB: results.idle.tus.gatewayMiB,
    };
  } finally {
    await stopTess(tess);
  }
}

// --- S3: TESS and its peers on the same s3rver ------------------------------------------------------------------

async function rcloneCopy(file, endpoint, name) {
  const { stdout: obscured } = await execFileP('rclone', ['obscure', 'tess-bench-password']);
  const env = {
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_S3_TYPE: 's3',
    RCLONE_CONFIG_S3_PROVIDER: 'Other',
    RCLONE_CONFIG_S3_ACCESS_KEY_ID: 'S3RVER',
    RCLONE_CONFIG_S3_SECRET_ACCESS_KEY: 'S3RVER',
    RCLONE_CONFIG_S3_ENDPOINT: endpoint,
    RCLONE_CONFIG_S3_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_C_TYPE: 'crypt',
    RCLONE_CONFIG_C_REMOTE: `s3:${BUCKET}/rclone`,
    RCLONE_CONFIG_C_PASSWORD: obscured.trim(),
  };
  // Without AWS_CA_BUNDLE (rclone 1.60 fails on it, see docs/benchmarks.md): the child gets only this env.
  const proc = startProcess('rclone', null, {
    command: ['/usr/bin/time', '-v', 'rclone', 'copyto', file.path, `c:${name}`, '--s3-chunk-size', '5M'],
    env,
  });
  const t0 = performance.now();
  const status = await proc.exited;
  const seconds = (performance.now() - t0) / 1000;
  if (status.code !== 0) throw new Error(`rclone failed (${JSON.stringify(status)})\n${tail(proc.output())}`);
  const out = proc.output();
  const kib = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(out)?.[1] ?? 0);
  const cpuSeconds =
    Number(/User time \(seconds\): ([\d.]+)/.exec(out)?.[1] ?? NaN) +
    Number(/System time \(seconds\): ([\d.]+)/.exec(out)?.[1] ?? NaN);
  return { seconds, mbps: mbps(file.size, seconds), peakMiB: kib / 1024, cpuSeconds };
}

async function s3Phase(big) {
  const directory = join(workdir, 's3rver');
  await mkdir(directory, { recursive: true });
  const s3rver = startProcess('s3rver', join(ROOT, 'bench', 's3rver.mjs'), { args: [directory, BUCKET] });
  const port = JSON.parse((await s3rver.waitForOutput(/\{"port":\d+\}/))[0]).port;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  const empty = async (prefix) => {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    for (const object of listed.Contents ?? []) {
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: object.Key }));
    }
  };
  const world = await tessEnv('s3', {
    STORAGE_DRIVER: 's3',
    S3_BUCKET: BUCKET,
    S3_ENDPOINT: endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    ...(process.env.BENCH_S3_PART_SIZE ? { S3_PART_SIZE: process.env.BENCH_S3_PART_SIZE } : {}),
  });
  const tess = await startTess(world, 1);
  /** Runs one upload and adds the CPU seconds s3rver spent meanwhile. */
  const withEndpointCpu = async (fn) => {
    const monitor = new PeakRss([s3rver]);
    await monitor.start();
    const result = await fn();
    await monitor.stop();
    return { ...result, endpointCpuSeconds: monitor.cpuMs.s3rver / 1000 };
  };
  try {
    const token = await createUser(tess.base, `bench_${randomBytes(3).toString('hex')}`, PASSWORD);
    const plain = [];
    const e2e = [];
    const rclone = [];
    const haveRclone = results.machine.rclone !== null;
    const contenders = [
      async () => {
        const key = `plain/${randomUUID()}`;
        await settle();
        const r = await withEndpointCpu(() =>
          runJson('plain-put', join(ROOT, 'bench', 'plain-put.mjs'), {
            args: [big.path, endpoint, BUCKET, key],
            env: { ...WORKER_ENV },
          }),
        );
        plain.push({ ...r, mbps: mbps(r.bytes, r.seconds), peakMiB: r.maxRssKiB / 1024 });
        await empty('plain/');
      },
      async () => {
        // The previous round's upload goes first (the last one stays for the downloads).
        if (e2e.length) await deleteFiles(tess, token, [e2e.at(-1).id]);
        e2e.push(await endToEnd(tess, token, big, s3rver));
      },
      async (round) => {
        if (!haveRclone) return;
        await settle();
        rclone.push(await withEndpointCpu(() => rcloneCopy(big, endpoint, `copy-${round}`)));
        await empty('rclone/');
      },
    ];
    // Untimed: the first large upload of these TESS processes, slower like section 3's first row (their
    // heaps and buffers grow into memory this VM has not used lately); deleted, it leaves that memory
    // just freed for the contenders below.
    await removedAfter(tess, token, await endToEnd(tess, token, big, s3rver));
    // Interleaved, so drift in the machine's load hits every contender alike, and rotated, so no contender
    // always follows the same one (a TESS upload right after the plain upload ingested measurably slower).
    for (let round = 0; round < Math.min(REPEATS, 2); round++) {
      for (let k = 0; k < contenders.length; k++) await contenders[(round + k) % contenders.length](round);
    }
    results.plainS3 = summarize(plain);
    results.e2eS3 = summarizeE2e(e2e);
    if (haveRclone) results.rclone = summarize(rclone);
    else results.notes.push('rclone is not installed (`apt-get install -y rclone`): its row is empty.');
    await settle();
    const seed = await withEndpointCpu(() =>
      runJson('seed-baseline', join(ROOT, 'bench', 'seed-baseline.mjs'), {
        args: [big.path, endpoint, BUCKET, `seed/${randomUUID()}`],
      }),
    );
    if (seed.sha1 !== big.sha1) throw new Error('the seed baseline computed a wrong SHA-1');
    results.seed = { ...seed, mbps: mbps(seed.bytes, seed.seconds), peakMiB: seed.maxRssKiB / 1024 };
    await empty('seed/');
    await downloads(tess, token, big, e2e.at(-1).id, 's3');
  } finally {
    await stopTess(tess);
    client.destroy();
    await s3rver.stop();
  }
}

// --- listing and search at 100,000 files -------------------------------------------------------------------

const LISTING_FILES = Number(process.env.BENCH_LISTING_FILES ?? 100_000);
const LISTING_WORDS = ['report', 'invoice', 'photo', 'notes', 'contract', 'backup', 'scan', 'minutes'];

/** One GET through the real gateway (JSON, auth, access checks); its wall time in ms and its body. */
async function timedGet(base, token, path) {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${body.message}`);
  return { ms: performance.now() - started, body };
}

const latency = (samples) => ({
  p50Ms: percentile(samples, 50),
  p95Ms: percentile(samples, 95),
  n: samples.length,
});

/**
 * Seeds LISTING_FILES rows for one user straight into PostgreSQL (names from a few words, a number and a
 * random tag, so searches range from common to rare), then times pages of 50 through the gateway: the
 * first and 30 following pages (keyset cursors) of every order, and name searches by substring, common
 * (1 in 8 files), rare (a few files) and of two characters (below pg_trgm's three, a scan of the index
 * order instead).
 */
async function listingPhase() {
  const world = await tessEnv('listing');
  const gateway = startProcess('gateway-listing', join(ROOT, GATEWAY), {
    env: { ...world.env, ...GATEWAY_ENV },
    nodeArgs: GATEWAY_NODE_ARGS,
  });
  try {
    await waitForHttp(`${world.base}/readyz`, 90_000, gateway);
    const token = await createUser(world.base, `lister_${randomBytes(3).toString('hex')}`, PASSWORD);
    const db = new pg.Client({ connectionString: world.databaseUrl });
    await db.connect();
    try {
      const started = performance.now();
      await db.query(
        `INSERT INTO files (id, owner_id, filename, content_type, size, status, attempts, created_at, updated_at)
         SELECT gen_random_uuid(), (SELECT id FROM users LIMIT 1),
                ($2::text[])[1 + g % array_length($2::text[], 1)] || ' ' || g || ' ' || substr(md5(g::text), 1, 6) || '.pdf',
                'application/pdf', (g * 7919) % 50000000, CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'queued' END, 0,
                timestamptz '2026-01-01' + (g || ' seconds')::interval, now()
           FROM generate_series(1, $1) g`,
        [LISTING_FILES, LISTING_WORDS],
      );
      await db.query('ANALYZE files');
      const seedSeconds = (performance.now() - started) / 1000;
      const rare = (await db.query("SELECT substr(md5('4242'), 1, 6) AS tag")).rows[0].tag;
      const out = { files: LISTING_FILES, seedSeconds, pageSize: 50, list: {}, search: {} };
      for (const [sort, order] of [
        ['createdAt', 'desc'],
        ['name', 'asc'],
        ['size', 'desc'],
      ]) {
        const samples = [];
        for (let round = 0; round < 2; round++) {
          let cursor = null;
          for (let page = 0; page < 31; page++) {
            const query = `limit=50&folderId=root&sort=${sort}&order=${order}${cursor ? `&cursor=${cursor}` : ''}`;
            const { ms, body } = await timedGet(world.base, token, `/api/v1/files?${query}`);
            if (round > 0 || page > 0) samples.push(ms); // the very first request warms the connection
            cursor = body.nextCursor;
          }
        }
        out.list[`${sort} ${order}`] = latency(samples);
      }
      for (const [label, q] of [
        ['common word (1 in 8)', 'invoice'],
        ['rare tag (a few files)', rare],
        ['two characters', 'ot'],
      ]) {
        const samples = [];
        let hits = 0;
        for (let i = 0; i < 40; i++) {
          const { ms, body } = await timedGet(
            world.base,
            token,
            `/api/v1/files?limit=50&folderId=root&q=${encodeURIComponent(q)}`,
          );
          samples.push(ms);
          hits = body.items.length;
        }
        out.search[label] = { ...latency(samples), q, hits };
      }
      const worst = Math.max(
        ...Object.values(out.list).map((l) => l.p95Ms),
        ...Object.values(out.search).map((l) => l.p95Ms),
      );
      results.listing = { ...out, worstP95Ms: worst };
    } finally {
      await db.end();
    }
  } finally {
    await gateway.stop();
  }
}

// --- 10. scale-out and 11. a burst: the numbers that size the workers and KEDA's listLength --------------------

const SCALE_FILES = Number(process.env.BENCH_SCALE_FILES ?? 16);
const SCALE_MIB = Number(process.env.BENCH_SCALE_MIB ?? 64);
const SCALE_WORKERS = [1, 2, 4];
const BURST_FILES = Number(process.env.BENCH_BURST_FILES ?? 500);
const BURST_KIB = Number(process.env.BENCH_BURST_KIB ?? 256);
const BURST_IN_FLIGHT = 16;
/** Jobs per worker process: the value of k8s/base/configmap.yaml (and the config default). */
const CONCURRENCY = 2;

/**
 * The world's crypto queue through BullMQ (to hold it while workers start, and to read its finished jobs)
 * and the Redis lists KEDA's two triggers read: <REDIS_PREFIX>:bull:crypto:wait and :active.
 */
function cryptoQueue(world) {
  const prefix = `${world.env.REDIS_PREFIX}:bull`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('crypto', { connection: redis, prefix });
  queue.on('error', () => undefined); // a lost connection fails the phase's next call instead
  cleanups.push(async () => {
    await queue.close();
    redis.disconnect();
  });
  return { queue, redis, waitKey: `${prefix}:crypto:wait`, activeKey: `${prefix}:crypto:active` };
}

/** Uploads every body through `/api/v1/uploads`, one file per request, `inFlight` at once; their file ids. */
function uploadEach(tess, token, bodies, inFlight) {
  const auth = { Authorization: `Bearer ${token}` };
  return mapLimit(bodies, inFlight, async (body) => {
    const res = await postFiles(`${tess.base}/api/v1/uploads`, [body], auth);
    if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${res.text.slice(0, 300)}`);
    return JSON.parse(res.text).files[0].id;
  });
}

async function deleteFiles(tess, token, ids) {
  const res = await request(`${tess.base}/api/v1/files/bulk-delete`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ids }),
  });
  const deleted = res.status === 200 ? JSON.parse(res.text).deleted : 0;
  if (deleted !== ids.length)
    throw new Error(`bulk delete answered ${res.status}: ${res.text.slice(0, 300)}`);
}

/** Machine CPU busy and I/O-wait shares between two machineTicks() readings. */
function machineShare(before, after) {
  const total = Math.max(1, after.total - before.total);
  return { machineBusy: (after.busy - before.busy) / total, ioWait: (after.iowait - before.iowait) / total };
}

/**
 * One point of the curve: SCALE_FILES copies of `file` staged through the real gateway while the queue is
 * paused (so neither ingest nor the workers' start-up is measured), `workers` worker processes started and
 * ready, then the queue resumed; timed until the last row is `stored`. The files are deleted afterwards.
 */
async function scaleRound(world, tess, token, file, queue, workers) {
  await queue.pause();
  const bodies = Array.from({ length: SCALE_FILES }, (_, i) => ({
    ...file,
    filename: `scale-${workers}-${i}.bin`,
  }));
  const ids = await uploadEach(tess, token, bodies, 2);
  const booting = performance.now();
  const starts = await Promise.allSettled(
    Array.from({ length: workers }, (_, i) => startWorker(world, `scale-worker-${i + 1}`)),
  );
  const bootSeconds = (performance.now() - booting) / 1000;
  const procs = starts.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  let round;
  try {
    const failed = starts.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    await settle();
    const monitor = new PeakRss([tess.gateway, ...procs]);
    await monitor.start();
    const ticks = await machineTicks();
    const t0 = Date.now();
    await queue.resume();
    const rows = await waitStored(tess, ids);
    const share = machineShare(ticks, await machineTicks());
    const peaks = await monitor.stop();
    const wrong = rows.find((row) => row.sha256 !== file.sha256);
    if (wrong) throw new Error(`file ${wrong.id}: stored SHA-256 ${wrong.sha256}, expected ${file.sha256}`);
    const seconds = (Math.max(...rows.map((row) => row.stored)) - t0) / 1000;
    const bytes = file.size * ids.length;
    const workerCpuSeconds = procs.map((p) => monitor.cpuMs[p.name] / 1000);
    round = {
      workers,
      seconds,
      filesPerSecond: ids.length / seconds,
      mbps: mbps(bytes, seconds),
      bootSeconds,
      workerCpuSeconds,
      cpuSecondsPerMiB: workerCpuSeconds.reduce((sum, s) => sum + s, 0) / (bytes / MiB),
      gatewayCpuSeconds: monitor.cpuMs.gateway / 1000,
      ...share,
      workerMiB: procs.map((p) => peaks[p.name]),
      gatewayMiB: peaks.gateway,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
  await deleteFiles(tess, token, ids);
  return round;
}

async function scalePhase(files) {
  const file =
    files.find((f) => f.size === SCALE_MIB * MiB) ??
    (await makeFile(`scale-${SCALE_MIB}MiB.bin`, SCALE_MIB * MiB));
  const world = await tessEnv('scale', { WORKER_CONCURRENCY: String(CONCURRENCY) });
  const tess = await startTess(world, 0);
  try {
    const { queue } = cryptoQueue(world);
    const token = await createUser(tess.base, `bench_${randomBytes(3).toString('hex')}`, PASSWORD);
    const rounds = [];
    for (const workers of SCALE_WORKERS)
      rounds.push(await scaleRound(world, tess, token, file, queue, workers));
    results.scaleOut = { mib: SCALE_MIB, files: SCALE_FILES, concurrency: CONCURRENCY, rounds };
  } finally {
    await stopTess(tess);
  }
}

/** LLEN of KEDA's two lists every 100 ms until stopped: [ms since t0, waiting, active] per sample. */
function sampleQueue({ redis, waitKey, activeKey }, t0) {
  const samples = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const [[, waiting], [, active]] = await redis.pipeline().llen(waitKey).llen(activeKey).exec();
      samples.push([Date.now() - t0, waiting, active]);
      await sleep(100);
    }
  })();
  // Its failure (Redis gone, or closed by an interrupted run's cleanup) is reported by stop().
  loop.catch(() => undefined);
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/**
 * The scaling settings of the KEDA ScaledObject shipped in k8s/base (the wait-list trigger comes first) and
 * the ConfigMap's largest upload, for the sizing table of the report.
 */
async function kedaSettings() {
  const yaml = await readFile(join(ROOT, 'k8s', 'base', 'crypto-worker-scaledobject.yaml'), 'utf8');
  const config = await readFile(join(ROOT, 'k8s', 'base', 'configmap.yaml'), 'utf8');
  const number = (text, pattern) => Number(pattern.exec(text)?.[1]);
  return {
    listLength: number(yaml, /listLength: "(\d+)"/),
    pollingInterval: number(yaml, /pollingInterval: (\d+)/),
    maxReplicaCount: number(yaml, /maxReplicaCount: (\d+)/),
    maxFileMiB: number(config, /MAX_FILE_SIZE: (\d+)MiB/),
  };
}

/**
 * BURST_FILES files of BURST_KIB KiB uploaded as fast as the client can (BURST_IN_FLIGHT requests at once)
 * to a TESS whose 2 worker processes are running. Queue wait per file is the row's `created_at` (queued,
 * just before the job is added) to `processing_started_at` (the worker's claim), cross-checked by BullMQ's
 * own job.timestamp -> job.processedOn; the wait list is sampled as KEDA reads it.
 */
async function burstPhase() {
  const world = await tessEnv('burst', { WORKER_CONCURRENCY: String(CONCURRENCY) });
  const tess = await startTess(world, 2);
  try {
    const queue = cryptoQueue(world);
    const token = await createUser(tess.base, `bench_${randomBytes(3).toString('hex')}`, PASSWORD);
    const bodies = Array.from({ length: BURST_FILES }, (_, i) => ({
      filename: `burst-${i}.bin`,
      buffer: randomContent(Buffer.allocUnsafe(BURST_KIB * 1024)),
    }));
    await settle();
    const monitor = new PeakRss([tess.gateway, ...tess.workers]);
    await monitor.start();
    const ticks = await machineTicks();
    const t0 = Date.now();
    const sampler = sampleQueue(queue, t0);
    const burst = (async () => {
      const ids = await uploadEach(tess, token, bodies, BURST_IN_FLIGHT);
      const uploadedMs = Date.now() - t0;
      return { ids, uploadedMs, rows: await waitStored(tess, ids, 300_000, 50) };
    })();
    // Sampling ends with the burst, also when it fails (whose error is the one to report).
    const { ids, uploadedMs, rows } = await burst.finally(() => sampler.stop().catch(() => undefined));
    const samples = await sampler.stop();
    const share = machineShare(ticks, await machineTicks());
    const peaks = await monitor.stop();
    const jobs = await queue.queue.getJobs(['completed'], 0, -1);
    const mine = new Set(ids);
    const bullWaits = jobs.filter((j) => mine.has(j.id)).map((j) => j.processedOn - j.timestamp);
    const waits = rows.map((r) => r.started - r.created);
    const firstStarted = Math.min(...rows.map((r) => r.started));
    const lastStored = Math.max(...rows.map((r) => r.stored));
    const peak = samples.reduce((best, s) => (s[1] > best[1] ? s : best), [0, 0, 0]);
    const lastWaiting = samples.findLastIndex((s) => s[1] > 0);
    results.burst = {
      files: rows.length,
      kib: BURST_KIB,
      inFlight: BURST_IN_FLIGHT,
      workers: tess.workers.length,
      concurrency: CONCURRENCY,
      uploadSeconds: uploadedMs / 1000,
      uploadsPerSecond: rows.length / (uploadedMs / 1000),
      storedSeconds: (lastStored - t0) / 1000,
      drainFilesPerSecond: rows.length / ((lastStored - firstStarted) / 1000),
      waitP50Ms: percentile(waits, 50),
      waitP95Ms: percentile(waits, 95),
      waitMaxMs: Math.max(...waits),
      bullWaitP50Ms: percentile(bullWaits, 50),
      bullWaitP95Ms: percentile(bullWaits, 95),
      bullWaitMaxMs: Math.max(...bullWaits),
      bullJobs: bullWaits.length,
      maxWaiting: peak[1],
      maxWaitingAtSeconds: peak[0] / 1000,
      maxActive: Math.max(...samples.map((s) => s[2])),
      drainedAtSeconds: lastWaiting >= 0 ? (samples[lastWaiting + 1]?.[0] ?? NaN) / 1000 : 0,
      samples,
      ...share,
      gatewayCpuMsPerFile: monitor.cpuMs.gateway / rows.length,
      workerCpuMsPerFile: tess.workers.reduce((sum, w) => sum + monitor.cpuMs[w.name], 0) / rows.length,
      gatewayMiB: peaks.gateway,
      workerMiB: Math.max(...tess.workers.map((w) => peaks[w.name])),
      keda: await kedaSettings(),
    };
  } finally {
    await stopTess(tess);
  }
}

// --- main ----------------------------------------------------------------------------------------------------

async function preflight() {
  for (const entry of [GATEWAY, WORKER, 'dist/libs/common/src/index.js']) {
    if (!existsSync(join(ROOT, entry))) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  }
  const admin = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
  await admin.connect().catch((error) => {
    throw new Error(`PostgreSQL is not reachable at ${ADMIN_URL}: ${error.message}`);
  });
  await admin.end();
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  await redis.connect().catch((error) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL}: ${error.message}`);
  });
  redis.disconnect();
}

async function main() {
  await preflight();
  workdir = await mkdtemp(join(os.tmpdir(), 'tess-bench-'));
  const startedAt = performance.now();
  results.machine = await machine();
  results.config = { sizeMiB: SIZE_MIB, smallFiles: SMALL_FILES, repeats: REPEATS };
  log(`load average ${results.machine.loadBefore.map((l) => l.toFixed(2)).join(' ')}; working in ${workdir}`);
  const sizes = [8, 64, SIZE_MIB].filter((s, i, all) => s <= SIZE_MIB && all.indexOf(s) === i);
  const files = [];
  // These phases need none of the three test files (scale writes its own when its size is not among them).
  const needsFiles =
    !ONLY || [...ONLY].some((key) => !['listing', 'ceiling', 'footprint', 'scale', 'burst'].includes(key));
  if (needsFiles) for (const s of sizes) files.push(await makeFile(`data-${s}MiB.bin`, s * MiB));
  const big = files.at(-1);

  await phase('1. crypto ceiling (openssl speed)', ceiling, 'ceiling');
  await phase('2/7. worker pass and scaling', () => workerPasses(files), 'pass');
  await phase('worker pass profile (--cpu-prof)', () => profileWorkerPass(big), 'profile');
  await phase('ingest baseline (bare Node HTTP server)', () => ingestBaseline(big), 'ingest');
  await phase('memory floor (module footprint)', footprint, 'footprint');
  await phase('3/5/6. TESS with the local store', () => localPhase(files), 'local', 'small');
  await phase('8. resumable uploads (tus) vs multipart', () => tusPhase(big), 'tus');
  await phase('3/4/6. TESS and peers on s3rver', () => s3Phase(big), 's3');
  await phase('9. listing and search at 100,000 files', listingPhase, 'listing');
  await phase('10. scale-out: 1, 2 and 4 worker processes', () => scalePhase(files), 'scale');
  await phase('11. a burst of small files: queue wait', burstPhase, 'burst');
  results.machine.loadAfter = os.loadavg();
  results.totalSeconds = (performance.now() - startedAt) / 1000;
  if (ONLY) {
    // A partial run (while working on one part) must not replace the full report.
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }

  const { summary } = await writeReport(results, join(ROOT, 'docs'));
  process.stdout.write(`\n${summary}\n`);
  log(`wrote docs/benchmarks.md and docs/benchmarks-*.svg in ${results.totalSeconds.toFixed(0)} s`);
  if (Object.keys(results.errors).length) {
    log(`phases that failed: ${Object.keys(results.errors).join('; ')}`);
    process.exitCode = 1;
  }
}

try {
  await main();
} catch (error) {
  log(`failed: ${error instanceof Error ? error.stack : error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
// Keep-alive sockets and pools must not hold the process open once the report is written.
process.exit();
