// The ingest baseline: a bare Node HTTP server that streams each POST body to its own file with 1 MiB
// write buffers and fsyncs it before answering, as the gateway does with an upload (no parsing, no auth,
// no database). Usage: node bench/ingest-server.mjs <directory>; prints {"port":N}.
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const directory = process.argv[2];
const MiB = 1024 * 1024;
let count = 0;

const server = http.createServer(async (req, res) => {
  if (req.method !== 'POST') return res.writeHead(405).end();
  const path = join(directory, `upload-${++count}`);
  const out = createWriteStream(path, { highWaterMark: MiB, flush: true, mode: 0o600 });
  try {
    await pipeline(req, out);
    res
      .writeHead(202, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ bytes: out.bytesWritten }));
  } catch (error) {
    res.writeHead(500).end(String(error));
  } finally {
    await rm(path, { force: true });
  }
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
