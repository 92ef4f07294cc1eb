// The gateway's memory alone, quicker than a bench phase: starts the built gateway with the bench's
// environment (scripts/runtime-env.mjs) on a private database, Redis prefix and data directory, reads its
// idle RSS, then its peak RSS (VmHWM after clear_refs, cross-checked by 100 ms VmRSS samples) during one
// multipart upload, one tus upload and one download of a BENCH_SIZE_MIB (512) file; a worker runs only
// between the uploads and the download, to store the file. Everything it creates is removed at the end.
// Usage: node bench/gateway-memory.mjs  (BENCH_SIZE_MIB, BENCH_TUS_CHUNK_MIB (8), BENCH_STORE=local|s3 (s3rver in its own process),
// GATEWAY_NODE_ARGS="--trace-gc ...", GATEWAY_ENV='{"GLIBC_TUNABLES":"..."}' (over the runtime env), GATEWAY_OUTPUT=1 (print the gateway's output),
// WORKER_NODE_ARGS and WORKER_OUTPUT=1 likewise for the worker (its peak and CPU while it stores both uploads), BENCH_RUNTIME_ENV=off,
// TEST_DATABASE_URL, TEST_REDIS_URL). Prints one JSON line.
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import * as tus from 'tus-js-client';
import * as runtimeEnv from '../scripts/runtime-env.mjs';
import {
  createUser,
  download,
  freePort,
  killAll,
  MiB,
  memoryOf,
  PeakRss,
  postFiles,
  ROOT,
  removeWorld,
  startProcess,
  waitForHttp,
} from './lib.mjs';

const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 512);
/** The tus client's PATCH size (as the bench's tus phase: 8 MiB); smaller magnifies the per-PATCH cost. */
const TUS_CHUNK_MIB = Number(process.env.BENCH_TUS_CHUNK_MIB ?? 8);
const STORE = process.env.BENCH_STORE ?? 'local';
const OFF = process.env.BENCH_RUNTIME_ENV === 'off';
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NODE_ARGS = (process.env.GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
const WORKER_NODE_ARGS = (process.env.WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Anonymous and file-backed resident memory of a process in MiB (/proc/PID/smaps_rollup). */
async function rollup(pid) {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { anonMiB: kib('Anonymous') / 1024, fileMiB: (kib('Rss') - kib('Anonymous')) / 1024 };
}

async function bigFile(dir) {
  const path = join(dir, 'big.bin');
  const handle = await open(path, 'w');
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(8 * MiB);
  for (let i = 0; i < SIZE_MIB / 8; i++) {
    randomFillSync(chunk);
    hash.update(chunk);
    await handle.write(chunk);
  }
  await handle.close();
  return { path, filename: 'big.bin', size: SIZE_MIB * MiB, sha256: hash.digest('hex') };
}

function tusSend(base, token, file) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(file.path), {
      endpoint: `${base}/api/v1/tus`,
      headers: { Authorization: `Bearer ${token}` },
      chunkSize: TUS_CHUNK_MIB * MiB,
      metadata: { filename: file.filename, filetype: 'application/octet-stream', sha256: file.sha256 },
      storeFingerprintForResuming: false,
      retryDelays: null,
      onSuccess: () => resolve(upload.url.split('/').pop()),
      onError: reject,
    });
    upload.start();
  });
}

async function peakOf(proc, run) {
  const rss = new PeakRss([proc]);
  await rss.start();
  const started = performance.now();
  const result = await run();
  const seconds = (performance.now() - started) / 1000;
  const peaks = await rss.stop();
  return { result, peakMiB: peaks[proc.name], seconds, cpuSeconds: rss.cpuMs[proc.name] / 1000 };
}

async function waitStored(db, ids) {
  for (let i = 0; i < 1200; i++) {
    const { rows } = await db.query('SELECT status FROM files WHERE id = ANY($1::uuid[])', [ids]);
    if (rows.length === ids.length && rows.every((r) => r.status === 'stored')) return;
    await sleep(100);
  }
  throw new Error('files not stored within 120 s');
}

async function main() {
  const id = randomBytes(4).toString('hex');
  const database = `tess_gwmem_${id}`;
  const prefix = `tess-gwmem-${id}`;
  const dir = await mkdtemp(join(os.tmpdir(), 'tess-gwmem-'));
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${database}`;
  const port = await freePort();
  let s3Endpoint;
  if (STORE === 's3') {
    const directory = join(dir, 's3rver');
    await mkdir(directory);
    const s3rver = startProcess('s3rver', join(ROOT, 'bench', 's3rver.mjs'), {
      args: [directory, 'tess-bench'],
    });
    s3Endpoint = `http://127.0.0.1:${JSON.parse((await s3rver.waitForOutput(/\{"port":\d+\}/))[0]).port}`;
  }
  const base = `http://127.0.0.1:${port}`;
  const env = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL,
    REDIS_PREFIX: prefix,
    DATA_DIR: join(dir, 'data'),
    MAX_FILE_SIZE: '1GiB',
    WORKER_HEALTH_PORT: '0',
    ...(STORE === 's3'
      ? {
          STORAGE_DRIVER: 's3',
          S3_BUCKET: 'tess-bench',
          S3_ENDPOINT: s3Endpoint,
          S3_FORCE_PATH_STYLE: 'true',
          S3_ACCESS_KEY_ID: 'S3RVER',
          S3_SECRET_ACCESS_KEY: 'S3RVER',
        }
      : {}),
  };
  const db = new pg.Pool({ connectionString: dbUrl.toString(), max: 1 });
  const report = { store: STORE, sizeMiB: SIZE_MIB, runtimeEnv: !OFF };
  let gateway;
  let worker;
  try {
    gateway = startProcess('gateway', join(ROOT, 'dist/apps/gateway/src/main.js'), {
      env: { ...env, ...(OFF ? {} : runtimeEnv.GATEWAY_ENV), ...JSON.parse(process.env.GATEWAY_ENV ?? '{}') },
      nodeArgs: [...(OFF ? [] : runtimeEnv.GATEWAY_NODE_ARGS), ...NODE_ARGS],
    });
    await waitForHttp(`${base}/readyz`, 90_000, gateway);
    await sleep(500);
    report.idleMiB = (await memoryOf(gateway.pid)).rss / 1024;
    report.idle = await rollup(gateway.pid);
    const token = await createUser(base, `gwmem_${id.slice(0, 6)}`, 'correct horse battery staple');
    const auth = { Authorization: `Bearer ${token}` };
    const file = await bigFile(dir);
    const multipart = await peakOf(gateway, () => postFiles(`${base}/api/v1/uploads`, [file], auth));
    if (multipart.result.status !== 202) throw new Error(`upload answered ${multipart.result.status}`);
    const fileId = JSON.parse(multipart.result.text).files[0].id;
    report.multipart = { ...multipart, result: undefined };
    const tusUpload = await peakOf(gateway, () => tusSend(base, token, file));
    report.tus = { ...tusUpload, result: undefined };
    worker = startProcess('worker', join(ROOT, 'dist/apps/crypto-worker/src/main.js'), {
      env: { ...env, ...(OFF ? {} : runtimeEnv.WORKER_ENV) },
      nodeArgs: WORKER_NODE_ARGS,
    });
    await worker.waitForOutput(/Processing queue/, 90_000);
    // Both files at once (the worker's concurrency is 2): its peak and CPU for storing them.
    const stored = await peakOf(worker, () => waitStored(db, [fileId, tusUpload.result]));
    report.worker = { peakMiB: stored.peakMiB, seconds: stored.seconds, cpuSeconds: stored.cpuSeconds };
    await worker.stop();
    await sleep(500);
    report.beforeDownloadMiB = (await memoryOf(gateway.pid)).rss / 1024;
    const got = await peakOf(gateway, () => download(`${base}/api/v1/files/${fileId}/content`, auth));
    if (got.result.status !== 200 || got.result.bytes !== file.size) throw new Error('download failed');
    report.download = { ...got, result: undefined };
    report.after = await rollup(gateway.pid);
  } finally {
    // GATEWAY_OUTPUT=1: the gateway's own output too (e.g. with GATEWAY_NODE_ARGS=--trace-gc).
    if (process.env.GATEWAY_OUTPUT && gateway) process.stderr.write(gateway.output());
    if (process.env.WORKER_OUTPUT && worker) process.stderr.write(worker.output());
    // A graceful stop, so that --cpu-prof in GATEWAY_NODE_ARGS gets to write its profile.
    await gateway?.stop();
    await killAll();
    await db.end();
    await removeWorld({ adminUrl: ADMIN_URL, redisUrl: REDIS_URL, database, prefix });
    await rm(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(report));
}

await main();
