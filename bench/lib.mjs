// Shared helpers of the benchmark: child processes that never outlive the run, peak-RSS measurement
// from /proc, a small HTTP client (streamed multipart uploads with 1 MiB chunks), statistics.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const MiB = 1024 * 1024;
/** Throughput unit of every table: decimal megabytes per second, like `openssl speed`. */
export const MB = 1e6;
const INHERITED = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR'];
const running = new Set();

function inheritedEnv() {
  return Object.fromEntries(
    INHERITED.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]),
  );
}

process.once('exit', () => {
  for (const proc of running) proc.child.kill('SIGKILL');
});

/** Starts `node <script>` (or any command with `command`) with exactly `env` plus PATH/HOME; output kept. */
export function startProcess(name, script, { args = [], env = {}, nodeArgs = [], command } = {}) {
  const child = command
    ? spawn(command[0], [...command.slice(1), ...args], {
        cwd: ROOT,
        env: { ...inheritedEnv(), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, [...nodeArgs, script, ...args], {
        cwd: ROOT,
        env: { ...inheritedEnv(), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let output = '';
  let stdout = '';
  const listeners = new Set();
  const append = (chunk, isStdout) => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-256 * 1024);
    if (isStdout) stdout = (stdout + text).slice(-256 * 1024);
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', (c) => append(c, true));
  child.stderr.on('data', (c) => append(c, false));
  let status;
  const proc = {
    name,
    child,
    pid: child.pid,
    output: () => output,
    stdout: () => stdout,
    status: () => status,
    exited: null,
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output);
          if (match) {
            done();
            resolve(match);
          } else if (status) {
            done();
            reject(
              new Error(
                `${name} exited (${JSON.stringify(status)}) before printing ${pattern}\n${tail(output)}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms\n${tail(output)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (status) return status;
      child.kill('SIGTERM');
      const result = await Promise.race([proc.exited, sleep(graceMs).then(() => null)]);
      if (result) return result;
      child.kill('SIGKILL');
      return proc.exited;
    },
  };
  proc.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      running.delete(proc);
      for (const listener of listeners) listener();
      resolve(status);
    });
    child.once('error', (error) => {
      output += `\n[spawn error] ${error.message}\n`;
      status ??= { code: -1, signal: null };
      running.delete(proc);
      for (const listener of listeners) listener();
      resolve(status);
    });
  });
  running.add(proc);
  return proc;
}

/** SIGKILLs every process started here that still runs, and waits for them. */
export async function killAll() {
  const left = [...running];
  for (const proc of left) proc.child.kill('SIGKILL');
  await Promise.all(left.map((proc) => proc.exited));
}

/** Runs a node script to completion and returns the JSON object on the last line of its stdout. */
export async function runJson(name, script, options = {}) {
  const proc = startProcess(name, script, options);
  const timeoutMs = options.timeoutMs ?? 300_000;
  const status = await Promise.race([proc.exited, sleep(timeoutMs).then(() => null)]);
  if (!status) {
    await proc.stop(1000);
    throw new Error(`${name} took longer than ${timeoutMs} ms\n${tail(proc.output())}`);
  }
  const lines = proc.stdout().trim().split('\n');
  if (status.code !== 0)
    throw new Error(`${name} failed (${JSON.stringify(status)})\n${tail(proc.output())}`);
  try {
    return JSON.parse(lines[lines.length - 1]);
  } catch {
    throw new Error(`${name} printed no JSON result\n${tail(proc.output())}`);
  }
}

export function tail(text, n = 3000) {
  return text.length > n ? `...${text.slice(-n)}` : text;
}

/** VmRSS and VmHWM of a process in KiB (null once it is gone). */
export async function memoryOf(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { rss, hwm };
  } catch {
    return null;
  }
}

/**
 * Busy and total CPU ticks of the whole machine (all cores, every process) from /proc/stat, and the idle
 * ticks spent waiting for I/O (a core with nothing to run while a process waits on the disk, e.g. fsync).
 */
export async function machineTicks() {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const iowait = values[4] ?? 0;
  const idle = values[3] + iowait;
  const total = values.reduce((sum, v) => sum + v, 0);
  return { busy: total - idle, total, iowait };
}

/** USER_HZ: /proc/PID/stat counts CPU time in these ticks (100 on Linux x86-64). */
const CLOCK_TICKS = 100;

/** CPU time (user + system, all threads) a process has used so far, in ms; null once it is gone. */
export async function cpuMsOf(pid) {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * Peak resident memory (and CPU time used) of processes over one phase: resets each process's high-water mark
 * (`echo 5 > /proc/PID/clear_refs`, Linux >= 4.0) and also samples VmRSS every 100 ms, so the result
 * holds even where the reset is not allowed.
 */
export class PeakRss {
  constructor(procs) {
    this.procs = procs;
    this.peaks = new Map(procs.map((p) => [p.name, 0]));
    this.timer = null;
  }

  async start() {
    this.cpuAtStart = await Promise.all(this.procs.map((p) => cpuMsOf(p.pid)));
    await Promise.all(
      this.procs.map((p) => writeFile(`/proc/${p.pid}/clear_refs`, '5').catch(() => undefined)),
    );
    await this.sample();
    this.timer = setInterval(() => void this.sample(), 100);
  }

  async sample() {
    await Promise.all(
      this.procs.map(async (p) => {
        const memory = await memoryOf(p.pid);
        if (memory) this.peaks.set(p.name, Math.max(this.peaks.get(p.name), memory.rss, memory.hwm));
      }),
    );
  }

  /** Peak RSS in MiB by process name; `cpuMs` then holds the CPU time each used meanwhile. */
  async stop() {
    clearInterval(this.timer);
    await this.sample();
    const cpuAtEnd = await Promise.all(this.procs.map((p) => cpuMsOf(p.pid)));
    this.cpuMs = Object.fromEntries(
      this.procs.map((p, i) => [p.name, (cpuAtEnd[i] ?? NaN) - (this.cpuAtStart[i] ?? NaN)]),
    );
    return Object.fromEntries([...this.peaks].map(([name, kib]) => [name, kib / 1024]));
  }
}

/**
 * CPU time of a changing set of processes over one phase (the PostgreSQL backends of a database, which a
 * pool opens and closes as it likes): `pids()` is asked every 250 ms, and each process counts from when it
 * was first seen (from 0 when it appeared after the start: its start-up is part of the phase) to its last
 * sample, so one that exits in between still counts up to then.
 */
export class ProcessSetCpu {
  constructor(pids) {
    this.pids = pids;
    this.first = new Map();
    this.last = new Map();
    this.timer = null;
  }

  async start() {
    await this.sample(false);
    this.timer = setInterval(() => void this.sample(true), 250);
  }

  async sample(appeared) {
    const pids = await this.pids().catch(() => []);
    await Promise.all(
      pids.map(async (pid) => {
        const ms = await cpuMsOf(pid);
        if (ms === null) return;
        if (!this.first.has(pid)) this.first.set(pid, appeared ? 0 : ms);
        this.last.set(pid, ms);
      }),
    );
  }

  /** CPU ms the set used over the phase. */
  async stop() {
    clearInterval(this.timer);
    await this.sample(true);
    let total = 0;
    for (const [pid, ms] of this.last) total += ms - this.first.get(pid);
    return total;
  }
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One HTTP request; the body is a string or Buffer. Resolves with status, headers and text. */
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** GET that discards the body: bytes received and the time to the last byte (ms). */
export function download(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(url, { headers, agent }, (res) => {
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes, ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * POSTs one multipart/form-data body with a `file` field per entry, streamed from disk in 1 MiB
 * chunks (or from a Buffer). Resolves when the whole answer arrived, with its status, text and time.
 */
export async function postFiles(url, files, headers = {}) {
  const boundary = `----tessbench${Math.random().toString(16).slice(2)}`;
  const pieces = [];
  let length = 0;
  for (const file of files) {
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.filename}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    pieces.push(head, file.buffer ?? { path: file.path }, Buffer.from('\r\n'));
    length += head.length + (file.buffer ? file.buffer.length : file.size) + 2;
  }
  const end = Buffer.from(`--${boundary}--\r\n`);
  pieces.push(end);
  length += end.length;
  const started = performance.now();
  const req = http.request(url, {
    method: 'POST',
    agent,
    headers: {
      'Content-Type': `multipart/form-data; boundary=${boundary}`,
      'Content-Length': String(length),
      ...headers,
    },
  });
  const answer = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          text: Buffer.concat(chunks).toString('utf8'),
          ms: performance.now() - started,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  async function* body() {
    for (const piece of pieces) {
      if (Buffer.isBuffer(piece)) yield piece;
      else yield* createReadStream(piece.path, { highWaterMark: MiB });
    }
  }
  await Promise.all([pipeline(body, req), answer]);
  return answer;
}

/** Registers a user through the pages (CSRF + session cookie) and exchanges the password for an API token. */
export async function createUser(base, username, password) {
  const page = await request(`${base}/register`);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
  const cookie = (page.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
  if (!csrf) throw new Error(`GET /register answered ${page.status} without a CSRF token`);
  const form = new URLSearchParams({ username, email: `${username}@example.test`, password, _csrf: csrf });
  const registered = await request(`${base}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie },
    body: form.toString(),
  });
  if (registered.status !== 303) throw new Error(`POST /register answered ${registered.status}`);
  const token = await request(`${base}/api/v1/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, name: 'bench' }),
  });
  if (token.status !== 201) throw new Error(`POST /api/v1/tokens answered ${token.status}: ${token.text}`);
  return JSON.parse(token.text).token;
}

/** Removes what a run's TESS left: its Redis keys (`<prefix>:*`) and its database. */
export async function removeWorld({ adminUrl, redisUrl, database, prefix }) {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  await admin.end();
}

/** A free loopback TCP port (bound and released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function waitForHttp(url, timeoutMs = 60_000, proc) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await request(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (proc?.status()) throw new Error(`${proc.name} exited before ${url} answered\n${tail(proc.output())}`);
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(200);
  }
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(lanes);
  return results;
}
