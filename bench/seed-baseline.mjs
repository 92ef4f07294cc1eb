// The seed-style baseline, as the original design did it: read the whole file into memory, SHA-1 it,
// encrypt it whole with AES-256-CBC, then upload the ciphertext in sequential 5 MiB multipart parts
// with @aws-sdk/client-s3. Usage: node bench/seed-baseline.mjs <file> <endpoint> <bucket> <key>
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

const [file, endpoint, Bucket, Key] = process.argv.slice(2);
const PART = 5 * 1024 * 1024;
const client = new S3Client({
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const baseline = process.resourceUsage().maxRSS;
const cpuBefore = process.cpuUsage();
const t0 = performance.now();
const plain = await readFile(file);
const t1 = performance.now();
const sha1 = createHash('sha1').update(plain).digest('hex');
const cipher = createCipheriv('aes-256-cbc', randomBytes(32), randomBytes(16));
const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
const t2 = performance.now();
const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
const Parts = [];
for (let offset = 0, PartNumber = 1; offset < encrypted.length; offset += PART, PartNumber++) {
  const Body = encrypted.subarray(offset, offset + PART);
  const { ETag } = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body }));
  Parts.push({ PartNumber, ETag });
}
await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }));
const t3 = performance.now();
client.destroy();
console.log(
  JSON.stringify({
    bytes: plain.length,
    sha1,
    seconds: (t3 - t0) / 1000,
    readSeconds: (t1 - t0) / 1000,
    cryptoSeconds: (t2 - t1) / 1000,
    uploadSeconds: (t3 - t2) / 1000,
    maxRssKiB: process.resourceUsage().maxRSS,
    cpuSeconds: (process.cpuUsage(cpuBefore).user + process.cpuUsage(cpuBefore).system) / 1e6,
    baselineRssKiB: baseline,
  }),
);
