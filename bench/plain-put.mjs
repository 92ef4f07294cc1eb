// The "plain" S3 baseline: the same file multipart-uploaded to the same s3rver with the project's own
// S3ObjectStore (its default 8 MiB parts, 4 in flight, as TESS uses them), with no hashing and no
// encryption: the rate the endpoint itself allows. Usage: node bench/plain-put.mjs <file> <endpoint> <bucket> <key>; prints one JSON line.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { S3ObjectStore } from '../dist/libs/common/src/storage/index.js';

const [file, endpoint, bucket, key] = process.argv.slice(2);
const store = new S3ObjectStore({
  bucket,
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
const size = (await stat(file)).size;
const baseline = process.resourceUsage().maxRSS;
const cpuBefore = process.cpuUsage();
const started = performance.now();
const stored = await store.put(key, createReadStream(file, { highWaterMark: 1024 * 1024 }), { size });
const seconds = (performance.now() - started) / 1000;
if (stored.size !== size) throw new Error(`stored ${stored.size} of ${size} bytes`);
await store.close();
console.log(
  JSON.stringify({
    bytes: size,
    seconds,
    maxRssKiB: process.resourceUsage().maxRSS,
    cpuSeconds: (process.cpuUsage(cpuBefore).user + process.cpuUsage(cpuBefore).system) / 1e6,
    baselineRssKiB: baseline,
  }),
);
