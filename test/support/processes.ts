import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, WORKER_ENTRY } from './paths.js';

/**
 * Real processes for end-to-end tests: the crypto worker as built by `npm run build`, started with a
 * test environment, its output captured for failure messages. Every process started here is tracked;
 * `killAllProcesses()` (call it in afterAll) and an exit hook make sure none outlives the test file.
 */

export { WORKER_ENTRY };

/** How the worker says it is consuming jobs (crypto-worker.service.ts), as text or inside a JSON log line. */
export const WORKER_READY = /Processing queue \\?"crypto\\?"/;

/** Keeps the last this many characters of a process's output. */
const OUTPUT_LIMIT = 256 * 1024;

/** Variables a child needs from the parent; everything else comes from the test environment only. */
const INHERITED = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'SYSTEMROOT'];

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TestProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** stdout and stderr interleaved, as received (the tail, when very long). */
  output(): string;
  /** Resolves with the exit status once the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** The exit status, or undefined while it runs. */
  exitStatus(): ExitStatus | undefined;
  /** Resolves when the output matches; rejects (with the output) on timeout or when the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal (no-op once exited). */
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if still running after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<ExitStatus>;
  /** Resolves with the exit status, or rejects (with the output) if the process is still running after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<ExitStatus>;
}

const running = new Set<TestProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the test runner's process goes away without afterAll (crash, timeout).
  process.once('exit', () => {
    for (const proc of running) proc.child.kill('SIGKILL');
  });
}

export interface StartProcessOptions {
  /** Working directory (default: the repository root). */
  cwd?: string;
  /** Arguments after the entry. */
  args?: string[];
  /** Variables taken from this process (default PATH, HOME, LANG, TZ, TMPDIR, SYSTEMROOT). */
  inherit?: readonly string[];
}

/** Starts `node <entry>` with exactly `env` (plus PATH/HOME and the like); output is captured. */
export function startProcess(
  name: string,
  entry: string,
  env: Record<string, string>,
  options: StartProcessOptions = {},
): TestProcess {
  installExitHook();
  const inherited = Object.fromEntries(
    (options.inherit ?? INHERITED).flatMap((key) =>
      process.env[key] === undefined ? [] : [[key, process.env[key]!]],
    ),
  );
  const child = spawn(process.execPath, [entry, ...(options.args ?? [])], {
    cwd: options.cwd ?? ROOT,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolveExit) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      running.delete(proc);
      resolveExit(status);
    });
    child.once('error', (error) => {
      append(Buffer.from(`\n[spawn error] ${error.message}\n`));
      status ??= { code: -1, signal: null };
      running.delete(proc);
      resolveExit(status);
    });
  });
  const describeProcess = () => `--- output of ${name} (pid ${child.pid}) ---\n${output || '(none)'}\n---`;

  const waitForExit = async (timeoutMs: number): Promise<ExitStatus> => {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      exited,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!result) throw new Error(`${name} was still running after ${timeoutMs} ms\n${describeProcess()}`);
    return result;
  };

  const proc: TestProcess = {
    name,
    pid: child.pid ?? -1,
    child,
    output: () => output,
    exited,
    exitStatus: () => status,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise<void>((resolveWait, reject) => {
        const check = () => {
          if (pattern.test(output)) {
            finish();
            resolveWait();
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms\n${describeProcess()}`));
        }, timeoutMs);
        const onExit = (exit: ExitStatus) => {
          finish();
          if (pattern.test(output)) resolveWait();
          else
            reject(
              new Error(
                `${name} exited (code ${exit.code}, signal ${exit.signal}) before printing ${pattern}\n${describeProcess()}`,
              ),
            );
        };
        const finish = () => {
          clearTimeout(timer);
          child.stdout?.off('data', check);
          child.stderr?.off('data', check);
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
        void exited.then(onExit);
        check();
      });
    },
    signal(signal) {
      if (!status) child.kill(signal);
    },
    async stop(graceMs = 10_000) {
      if (status) return status;
      child.kill('SIGTERM');
      try {
        return await waitForExit(graceMs);
      } catch {
        child.kill('SIGKILL');
        return exited;
      }
    },
    waitForExit,
  };
  running.add(proc);
  return proc;
}

let staleChecked = false;

/** Warns (once) when worker or library sources changed after the last `npm run build`. */
function warnIfBuildIsStale(): void {
  if (staleChecked) return;
  staleChecked = true;
  const stamp = join(ROOT, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return;
  const built = statSync(stamp).mtimeMs;
  const newer: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts') && !path.endsWith('.spec.ts') && statSync(path).mtimeMs > built)
        newer.push(path.slice(ROOT.length + 1));
    }
  };
  for (const dir of ['apps/crypto-worker/src', 'libs/common/src']) walk(join(ROOT, dir));
  if (newer.length) {
    console.warn(
      `The worker under test is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', ...' : ''}: ` +
        'run `npm run build` to test the current code.',
    );
  }
}

/**
 * Starts the built crypto worker (`node dist/apps/crypto-worker/src/main.js`) with `env` and waits until
 * it consumes the queue. Run `npm run build` first (`npm test` does).
 */
export async function startWorker(
  env: Record<string, string>,
  options: { name?: string; readyTimeoutMs?: number } = {},
): Promise<TestProcess> {
  if (!existsSync(WORKER_ENTRY)) {
    throw new Error(`${WORKER_ENTRY} does not exist: run \`npm run build\` before the pipeline tests`);
  }
  warnIfBuildIsStale();
  const worker = startProcess(options.name ?? 'crypto-worker', WORKER_ENTRY, {
    WORKER_HEALTH_PORT: '0',
    ...env,
    // Readiness is seen in the info-level log; more detail is fine, less would hide it.
    LOG_LEVEL: env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? env.LOG_LEVEL : 'info',
  });
  try {
    await worker.waitForOutput(WORKER_READY, options.readyTimeoutMs ?? 30_000);
  } catch (error) {
    worker.signal('SIGKILL');
    await worker.exited;
    throw error;
  }
  return worker;
}

/** Processes started by this test file that are still running. */
export function runningProcesses(): TestProcess[] {
  return [...running];
}

/** SIGKILLs every process started here that is still running and waits for them to exit. */
export async function killAllProcesses(): Promise<void> {
  const left = [...running];
  for (const proc of left) proc.child.kill('SIGKILL');
  await Promise.all(left.map((proc) => proc.exited));
}
