import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UnrecoverableError } from 'bullmq';
import type { DetectedContent } from '#common';

/** Bytes of the file the detector looks at: magic numbers sit in the first few KiB (file-type reads 4100). */
export const DETECTION_PREFIX = 64 * 1024;

/** A detection that takes longer than this is a hung detector, not a slow one (it sees 64 KiB at most). */
export const DETECTION_TIMEOUT_MS = 5_000;

/**
 * The detection thread. Magic bytes come from `file-type` (sindresorhus/file-type, maintained, ESM, runs on
 * Node >= 22 and on a buffer, so it only ever sees the bounded prefix). It runs on a thread of its own
 * because type detectors have had infinite-loop bugs (file-type's CVE-2022-36313 among them): a loop in
 * the parser would block the event loop a timer runs on, so only a thread can be timed out (terminated).
 * Plain CommonJS evaluated with `{ eval: true }` like the hash threads, importing file-type by URL.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = import(workerData.fileTypeUrl);
parentPort.on('message', async (m) => {
  try {
    const { fileTypeFromBuffer } = await loaded;
    const found = await fileTypeFromBuffer(new Uint8Array(m.bytes));
    parentPort.postMessage({ id: m.id, mime: found ? found.mime : null });
  } catch (error) {
    parentPort.postMessage({ id: m.id, error: String((error && error.message) || error) });
  }
});
`;

type Answer = { id: number; mime: string | null } | { id: number; error: string };

/**
 * Finds a file's type from its first bytes: magic numbers on the detection thread (time-limited), then,
 * for what has none, an inspection of the text (plain, CSV, JSON, HTML, SVG/XML, scripts with a shebang).
 * A detector failure or timeout fails the job: a file is never passed unchecked. Owned by ContentChecks,
 * which stops its thread at shutdown.
 */
export class TypeDetector {
  private thread?: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (mime: string | null) => void; reject: (e: Error) => void }
  >();
  private readonly fileTypeUrl = pathToFileURL(createRequire(import.meta.url).resolve('file-type')).href;

  constructor(private readonly timeoutMs = DETECTION_TIMEOUT_MS) {}

  /** The content type of a file whose first bytes are `prefix` (at most DETECTION_PREFIX of them). */
  async detect(prefix: Buffer): Promise<DetectedContent> {
    if (prefix.length === 0) return { type: 'application/x-empty', binary: false, activeContent: false };
    const magic = await this.magic(prefix.subarray(0, DETECTION_PREFIX));
    // file-type names any `<?xml` document application/xml; the text inspection tells SVG and XHTML apart.
    if (magic && magic !== 'application/xml') return { type: magic, binary: true, activeContent: false };
    return inspectText(prefix);
  }

  private magic(bytes: Buffer): Promise<string | null> {
    const thread = this.ensureThread();
    const id = this.nextId++;
    return new Promise<string | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // A hung parser never answers: the only way to stop it is to end its thread.
        this.stopThread(new Error('stopped'));
        reject(
          new UnrecoverableError(
            `File type detection did not finish within ${this.timeoutMs} ms; the file was not stored.`,
          ),
        );
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (mime) => {
          clearTimeout(timer);
          resolve(mime);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      // A copy: the pass reuses its read buffers.
      thread.postMessage({ id, bytes: Uint8Array.from(bytes) });
    });
  }

  private ensureThread(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(THREAD_SOURCE, { eval: true, workerData: { fileTypeUrl: this.fileTypeUrl } });
    thread.unref();
    thread.on('message', (answer: Answer) => {
      const waiter = this.pending.get(answer.id);
      if (!waiter) return;
      this.pending.delete(answer.id);
      if ('error' in answer) waiter.reject(new Error(`File type detection failed: ${answer.error}`));
      else waiter.resolve(answer.mime);
    });
    thread.on('error', (error) => this.stopThread(error));
    thread.on('exit', () => {
      if (this.thread === thread) this.stopThread(new Error('the detection thread exited'));
    });
    this.thread = thread;
    return thread;
  }

  private stopThread(error: Error): void {
    const thread = this.thread;
    this.thread = undefined;
    for (const waiter of this.pending.values())
      waiter.reject(new Error(`File type detection failed: ${error.message}`));
    this.pending.clear();
    void thread?.terminate();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopThread(new Error('the worker is shutting down'));
  }
}

const HTML_MARKERS =
  /^<(!doctype\s+html|html|head|body|script|iframe|div|p|a|meta|title|style|table|form)[\s>/]/i;
const SVG_ROOT = /<svg[\s>]/i;
/** Script in markup: a script element, an event handler attribute, a javascript: URL. */
export const ACTIVE_CONTENT = /<script[\s>/]|\son[a-z]+\s*=|javascript\s*:/i;

/**
 * The type of a file with no magic number, from its first bytes: binary (NUL bytes or not UTF-8) is
 * application/octet-stream; text is told apart by its start (shebang, markup, JSON) and shape (CSV).
 */
export function inspectText(prefix: Buffer): DetectedContent {
  let text: string;
  try {
    // `stream: true`: a character cut at the end of the prefix is not an error.
    text = new TextDecoder('utf-8', { fatal: true }).decode(prefix, { stream: true });
  } catch {
    return { type: 'application/octet-stream', binary: true, activeContent: false };
  }
  if (text.includes('\u0000'))
    return { type: 'application/octet-stream', binary: true, activeContent: false };
  const start = text.replace(/^\ufeff/, '').trimStart();
  const markup = (type: string): DetectedContent => ({
    type,
    binary: false,
    activeContent: ACTIVE_CONTENT.test(text),
  });
  if (start.startsWith('#!')) return { type: 'text/x-shellscript', binary: false, activeContent: false };
  if (start.startsWith('<')) {
    const head = start.slice(0, 4096);
    if (SVG_ROOT.test(head) && !/<html[\s>]/i.test(head)) return markup('image/svg+xml');
    if (HTML_MARKERS.test(start) || /<html[\s>]/i.test(head)) return markup('text/html');
    if (start.startsWith('<?xml')) return markup('application/xml');
  }
  if (/^[[{]/.test(start) && looksLikeJson(start, prefix.length < DETECTION_PREFIX)) {
    return { type: 'application/json', binary: false, activeContent: false };
  }
  if (looksLikeCsv(start)) return { type: 'text/csv', binary: false, activeContent: false };
  return { type: 'text/plain', binary: false, activeContent: false };
}

function looksLikeJson(text: string, whole: boolean): boolean {
  if (!whole) return /^(\{\s*"|\[\s*[[{"\d\-tfn\]])/.test(text);
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Two or more lines (the last one may be cut) with the same number of commas, at least one. */
function looksLikeCsv(text: string): boolean {
  const lines = text.split(/\r?\n/).slice(0, 20);
  if (lines.length > 1 && lines[lines.length - 1] !== '') lines.pop();
  const full = lines.filter((l) => l.length > 0);
  if (full.length < 2) return false;
  const commas = (l: string) => l.split(',').length - 1;
  const first = commas(full[0]!);
  return first > 0 && full.every((l) => commas(l) === first);
}
