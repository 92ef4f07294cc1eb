import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';
import { freePort } from './ports.js';
import { terminate } from './redis-server.js';

/**
 * A private clamd (Debian's clamav-daemon, `.ci/run` installs it) for the scanning tests: foreground, on a
 * free loopback TCP port, with the test signature database shipped in test/support/clamav (EICAR as a body
 * signature, so it is found inside a larger file, and one custom signature) and no network access: no
 * freshclam, no official databases. Start it once per test file, stop it in afterAll.
 */

export const CLAMD = '/usr/sbin/clamd';
export const TEST_SIGNATURES = join(ROOT, 'test', 'support', 'clamav');

/** The EICAR test file, assembled here so the repository holds no copy a scanner would flag. */
export const EICAR = Buffer.from(
  `${'X5O!P%@AP[4\\PZX54(P^)7CC)7}$'}${'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'}`,
  'latin1',
);
/** Bytes the custom signature (Tess.Test.Custom) matches. */
export const CUSTOM_SIGNATURE_BYTES = Buffer.from('TESS-CUSTOM-TEST-SIGNATURE-c0ffee', 'latin1');

export interface Clamd {
  port: number;
  /** CLAMD_URL for TESS. */
  url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port and configuration. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
  log(): string;
}

async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setTimeout(1_000);
    socket.on('data', (d) => {
      answer += d.toString();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('close', () => resolve(answer.startsWith('PONG')));
    socket.end('zPING\0');
  });
}

export async function startClamd(options: { streamMaxLength?: string } = {}): Promise<Clamd> {
  if (!existsSync(CLAMD))
    throw new Error(`${CLAMD} is missing: apt-get install clamav-daemon (.ci/run does)`);
  const dir = await mkdtemp(join(tmpdir(), 'tess-clamd-'));
  const port = await freePort();
  const conf = join(dir, 'clamd.conf');
  await writeFile(
    conf,
    [
      'Foreground yes',
      `LogFile ${join(dir, 'clamd.log')}`,
      `PidFile ${join(dir, 'clamd.pid')}`,
      `TemporaryDirectory ${dir}`,
      `DatabaseDirectory ${TEST_SIGNATURES}`,
      'TCPAddr 127.0.0.1',
      `TCPSocket ${port}`,
      `StreamMaxLength ${options.streamMaxLength ?? '100M'}`,
      'SelfCheck 0',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let output = '';
  const clamd: Clamd = {
    port,
    url: `tcp://127.0.0.1:${port}`,
    async start() {
      const started = spawn(CLAMD, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      started.stdout?.on('data', (d) => {
        output += d.toString();
      });
      started.stderr?.on('data', (d) => {
        output += d.toString();
      });
      const deadline = Date.now() + 30_000;
      while (!(await ping(port))) {
        if (started.exitCode !== null || Date.now() > deadline) {
          throw new Error(`clamd did not start:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: () => terminate(child),
    async dispose() {
      await clamd.stop();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
  await clamd.start();
  return clamd;
}

/**
 * A server that speaks just enough of clamd's protocol to answer every command with an error line, as
 * clamd does when a scan fails on its side (out of memory, a broken database): the worker must not
 * store a file that got no clean verdict.
 */
export async function startFailingClamd(answer = "stream: Can't allocate memory ERROR"): Promise<{
  url: string;
  close(): Promise<void>;
}> {
  const server: Server = createServer((socket) => {
    socket.on('error', () => undefined);
    let replied = false;
    socket.on('data', () => {
      if (replied) return;
      replied = true;
      socket.end(`${answer}\0`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `tcp://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
