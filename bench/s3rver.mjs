// s3rver on a loopback port in its own process, so its CPU and memory stay apart from what is measured.
// s3rver 3.7.1 answers ListMultipartUploads and AbortMultipartUpload with 501/405; the crypto worker calls
// both (it aborts leftovers before each upload), so a first Koa middleware serves them from s3rver's own
// upload directories, as test/support/s3-proxy.ts does in the tests (without a proxy hop in the data path).
// Usage: node bench/s3rver.mjs <directory> <bucket>; prints {"port":N} once listening; SIGTERM stops it.
import { readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [directory, bucket] = process.argv.slice(2);
const S3rver = createRequire(import.meta.url)('s3rver');
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket, configs: [] }],
});

const uploadsDir = (name) => join(directory, name, '._S3rver_uploads');
const keyOf = (name, uploadId) =>
  /^[0-9a-f]{8,64}$/.test(uploadId)
    ? readFile(join(uploadsDir(name), uploadId, 'key'), 'utf8').catch(() => null)
    : null;
const xml = (text) => text.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

server.middleware.unshift(async (ctx, next) => {
  const [name = '', ...rest] = ctx.path.slice(1).split('/');
  const key = rest.map(decodeURIComponent).join('/');
  if (ctx.method === 'GET' && !key && 'uploads' in ctx.query) {
    const prefix = String(ctx.query.prefix ?? '');
    const ids = await readdir(uploadsDir(name)).catch(() => []);
    let uploads = '';
    for (const id of ids) {
      const k = await keyOf(name, id);
      if (k?.startsWith(prefix)) uploads += `<Upload><Key>${xml(k)}</Key><UploadId>${id}</UploadId></Upload>`;
    }
    ctx.type = 'application/xml';
    ctx.body =
      '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult>' +
      `<Bucket>${xml(name)}</Bucket><Prefix>${xml(prefix)}</Prefix><IsTruncated>false</IsTruncated>` +
      `${uploads}</ListMultipartUploadsResult>`;
    return;
  }
  if (ctx.method === 'DELETE' && key && 'uploadId' in ctx.query) {
    const id = String(ctx.query.uploadId);
    if ((await keyOf(name, id)) !== key) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code></Error>';
      return;
    }
    await rm(join(uploadsDir(name), id), { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  await next();
});

const address = await server.run();
console.log(JSON.stringify({ port: address.port }));
process.on('SIGTERM', () => {
  server.httpServer?.closeAllConnections();
  server.close().finally(() => process.exit(0));
});
