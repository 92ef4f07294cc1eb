import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { PlaintextTap } from './plaintext-tap.js';

/** The digests a pass computes over the plaintext, lowercase hex. */
export interface PlaintextDigests {
  sha1: string;
  sha256: string;
}

const ALGORITHMS = ['sha1', 'sha256'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

/** Hashes one plaintext stream: a tap whose facts are the digests. */
export type HashSession = PlaintextTap<PlaintextDigests>;

/** SHA-1 and SHA-256 on the calling thread: for small files, where a thread round trip gains nothing. */
export function inlineHashSession(): HashSession {
  const sha1 = createHash('sha1');
  const sha256 = createHash('sha256');
  return {
    update(chunk, release) {
      sha1.update(chunk);
      sha256.update(chunk);
      release();
    },
    finish: async () => ({ sha1: sha1.digest('hex'), sha256: sha256.digest('hex') }),
    abort() {},
  };
}

/**
 * The hash thread. Plain CommonJS evaluated by `new Worker(..., { eval: true })`, so the same code runs
 * from dist/ and under the test runner, which loads TypeScript sources a thread could not import.
 * It reads chunks straight out of SharedArrayBuffers (no copy) and acknowledges each one in order.
 */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
// Per session: the shared buffers it was sent once, by slot; later chunks name only the slot.
const buffers = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.op === 'begin') {
      hashes.set(m.id, createHash(m.algorithm));
      buffers.set(m.id, []);
    } else if (m.op === 'data') {
      const hash = hashes.get(m.id);
      const known = buffers.get(m.id);
      if (m.buffer && known) known[m.slot] = m.buffer;
      if (hash && known) hash.update(new Uint8Array(known[m.slot], m.offset, m.length));
      parentPort.postMessage({ op: 'ack', id: m.id });
    } else if (m.op === 'once') {
      // One whole buffer, one answer: no session, nothing kept.
      const hex = createHash(m.algorithm).update(new Uint8Array(m.buffer, m.offset, m.length)).digest('hex');
      parentPort.postMessage({ op: 'digest', id: m.id, hex });
    } else if (m.op === 'end') {
      const hash = hashes.get(m.id);
      hashes.delete(m.id);
      buffers.delete(m.id);
      parentPort.postMessage({ op: 'digest', id: m.id, hex: hash ? hash.digest('hex') : null });
    } else if (m.op === 'abort') {
      hashes.delete(m.id);
      buffers.delete(m.id);
    }
  } catch (error) {
    hashes.delete(m.id);
    buffers.delete(m.id);
    parentPort.postMessage({ op: 'error', id: m.id, message: String((error && error.message) || error) });
  }
});
`;

type ThreadMessage =
  | { op: 'ack'; id: number }
  | { op: 'digest'; id: number; hex: string | null }
  | { op: 'error'; id: number; message: string };

/** One algorithm of one session, as the thread that computes it sees it. */
interface Lane {
  /** Releases waiting for this lane's acknowledgement, oldest first (the thread answers in order). */
  readonly acks: Array<() => void>;
  digest?: (hex: string) => void;
  fail: (error: Error) => void;
  /**
   * The shared buffers this lane's thread already holds, by slot. A pass cycles through a few read buffers,
   * so each is posted once and later chunks name only its slot (cloning a SharedArrayBuffer handle into
   * another isolate for every chunk showed as the main thread's largest cost after the cipher).
   */
  readonly slots: Map<SharedArrayBuffer, number>;
}

class HashThread {
  readonly worker: Worker;
  readonly lanes = new Map<number, Lane>();
  dead = false;

  constructor(private readonly onExit: (thread: HashThread) => void) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, name: 'tess-hash' });
    // Idle hash threads must not keep a process that is shutting down alive (see attach/detach).
    this.worker.unref();
    this.worker.on('message', (message: ThreadMessage) => this.receive(message));
    this.worker.on('error', (error) => this.die(error));
    this.worker.on('exit', (code) => this.die(new Error(`hash thread exited with code ${code}`)));
  }

  /** A thread with sessions keeps the event loop alive: someone is waiting for its answers. */
  attach(id: number, lane: Lane): void {
    if (this.lanes.size === 0) this.worker.ref();
    this.lanes.set(id, lane);
  }

  detach(id: number): void {
    if (this.lanes.delete(id) && this.lanes.size === 0) this.worker.unref();
  }

  private receive(message: ThreadMessage): void {
    const lane = this.lanes.get(message.id);
    if (!lane) return;
    if (message.op === 'ack') {
      lane.acks.shift()?.();
    } else if (message.op === 'digest') {
      this.detach(message.id);
      if (message.hex === null) lane.fail(new Error('hash thread lost the session'));
      else lane.digest?.(message.hex);
    } else {
      this.detach(message.id);
      lane.fail(new Error(`hashing failed: ${message.message}`));
    }
  }

  private die(error: Error): void {
    if (this.dead) return;
    this.dead = true;
    for (const lane of this.lanes.values()) lane.fail(error);
    this.lanes.clear();
    this.onExit(this);
  }
}

/**
 * The "threaded digests" tap: SHA-1 and SHA-256 off the main thread. A few worker threads each hash the
 * chunks they are handed in SharedArrayBuffers (the very buffers the main thread encrypts, no copy), so one
 * large file uses more than one core (the main thread meanwhile reads, encrypts and uploads). The two algorithms of a session go to different threads when there are two;
 * sessions are spread round-robin. Threads start on first use and are replaced if one dies; a session
 * on a dead thread fails with a readable error (the job is retried).
 */
@Injectable()
export class HashPool implements OnApplicationShutdown {
  private readonly logger = new Logger(HashPool.name);
  private readonly threads: Array<HashThread | undefined>;
  private nextSession = 0;
  private nextDigest = 0;
  private nextLane = 1;
  private closed = false;

  constructor(size = Math.min(availableParallelism(), 2 * ALGORITHMS.length)) {
    this.threads = new Array(Math.max(1, size)).fill(undefined);
  }

  /** Starts hashing one plaintext; chunks given to `update` must live in SharedArrayBuffers. */
  session(): HashSession {
    if (this.closed) throw new Error('The hash pool is shut down');
    const first = this.nextSession++;
    const lanes = ALGORITHMS.map((algorithm, index) => this.openLane(first, algorithm, index));
    let failure: Error | undefined;
    let finished = false;
    const failed = (error: Error) => {
      failure ??= error;
      // Whoever waits on a chunk must not wait forever: hand every pending chunk back.
      for (const { lane } of lanes) for (const release of lane.acks.splice(0)) release();
    };
    for (const entry of lanes) entry.lane.fail = failed;

    return {
      update(chunk, release) {
        if (failure) throw failure;
        if (!(chunk.buffer instanceof SharedArrayBuffer)) {
          throw new TypeError('HashPool sessions hash chunks that live in SharedArrayBuffers');
        }
        let waiting = lanes.length;
        const ack = () => {
          waiting -= 1;
          if (waiting === 0) release();
        };
        const shared = chunk.buffer;
        for (const { thread, lane, id } of lanes) {
          lane.acks.push(ack);
          let slot = lane.slots.get(shared);
          const first = slot === undefined;
          if (slot === undefined) {
            slot = lane.slots.size;
            lane.slots.set(shared, slot);
          }
          thread.worker.postMessage({
            op: 'data',
            id,
            slot,
            buffer: first ? shared : undefined,
            offset: chunk.byteOffset,
            length: chunk.length,
          });
        }
      },
      async finish() {
        if (finished) throw new Error('finish() was already called');
        finished = true;
        if (failure) throw failure;
        const [sha1, sha256] = await Promise.all(
          lanes.map(
            ({ thread, lane, id }) =>
              new Promise<string>((resolve, reject) => {
                lane.digest = resolve;
                lane.fail = (error) => {
                  failed(error);
                  reject(error);
                };
                if (failure) reject(failure);
                else thread.worker.postMessage({ op: 'end', id });
              }),
          ),
        );
        return { sha1: sha1!, sha256: sha256! };
      },
      abort() {
        if (finished) return;
        finished = true;
        failed(new Error('hash session aborted'));
        for (const { thread, id } of lanes) {
          thread.detach(id);
          if (!thread.dead) thread.worker.postMessage({ op: 'abort', id });
        }
      },
    };
  }

  /**
   * The digest of one whole buffer (lowercase hex) on a hash thread, which are taken in turn: for S3 part
   * payload hashes (PutObjectOptions.sha256), which the main thread would otherwise compute again for
   * every part it uploads. Rejects if the thread dies; `chunk` must live in a SharedArrayBuffer and stay
   * unchanged until the promise settles.
   */
  digest(algorithm: Algorithm, chunk: Buffer): Promise<string> {
    if (this.closed) return Promise.reject(new Error('The hash pool is shut down'));
    if (!(chunk.buffer instanceof SharedArrayBuffer)) {
      return Promise.reject(new TypeError('HashPool digests buffers that live in SharedArrayBuffers'));
    }
    const thread = this.thread(this.nextDigest++ % this.threads.length);
    const id = this.nextLane++;
    return new Promise((resolve, reject) => {
      thread.attach(id, { acks: [], digest: resolve, fail: reject, slots: new Map() });
      thread.worker.postMessage({
        op: 'once',
        id,
        algorithm,
        buffer: chunk.buffer,
        offset: chunk.byteOffset,
        length: chunk.length,
      });
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    const running = this.threads.filter((thread): thread is HashThread => thread !== undefined);
    this.threads.fill(undefined);
    await Promise.all(running.map((thread) => thread.worker.terminate()));
  }

  private openLane(
    session: number,
    algorithm: Algorithm,
    index: number,
  ): { thread: HashThread; lane: Lane; id: number } {
    const thread = this.thread((session + index) % this.threads.length);
    const id = this.nextLane++;
    const lane: Lane = { acks: [], fail: () => undefined, slots: new Map() };
    thread.attach(id, lane);
    thread.worker.postMessage({ op: 'begin', id, algorithm });
    return { thread, lane, id };
  }

  private thread(slot: number): HashThread {
    const existing = this.threads[slot];
    if (existing && !existing.dead) return existing;
    const thread = new HashThread((gone) => {
      if (this.threads[slot] === gone) this.threads[slot] = undefined;
      if (!this.closed) this.logger.warn('A hash thread stopped; the next job starts a new one');
    });
    this.threads[slot] = thread;
    return thread;
  }
}
