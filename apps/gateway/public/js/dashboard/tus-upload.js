// One resumable upload: tus-js-client (its browser build, a classic script of the page: window.tus) to
// /api/v1/tus in TUS_CHUNK_SIZE chunks with the session cookie and the CSRF header, retried with backoff
// on network errors, 5xx and 429, remembered in localStorage (tus-js-client's fingerprint and URL
// storage) so the same file picked again after a reload or a browser restart continues from the server's
// offset. Alongside, the file's SHA-256 is computed in a Web Worker and declared on the PATCH that
// completes the upload (Tess-Upload-Sha256), which waits for it: the server records it before it queues
// the file, and the worker proves that what it stored is what left this computer.
import { csrfToken, tusChunkSize, userId } from './page.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Waits before each retry (ms); after the last one the upload fails and can be picked again to resume. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000, 60_000];

/** The SHA-256 of `file`, hashed by sha256.worker.js; `cancel()` stops the worker. */
function hashInWorker(file, onProgress) {
  const worker = new Worker('/static/js/dashboard/sha256.worker.js');
  let settle;
  const promise = new Promise((resolve, reject) => {
    settle = (error, sha256) => {
      worker.terminate();
      if (error) reject(error);
      else resolve(sha256);
    };
  });
  worker.onmessage = ({ data }) => {
    if (data.type === 'progress') onProgress?.(data.bytes);
    else if (data.type === 'done') settle(null, data.sha256);
    else settle(new Error(data.message));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    settle(new Error(event.message || 'the hashing worker could not run'));
  };
  worker.postMessage({ file });
  promise.catch(() => undefined);
  const hash = {
    promise,
    cancelled: false,
    cancel() {
      hash.cancelled = true;
      settle(new Error('cancelled'));
    },
  };
  return hash;
}

/** The HTTP status behind a tus-js-client error (0: no answer at all). */
export function statusOf(error) {
  return error?.originalResponse?.getStatus?.() ?? 0;
}

/** The body of the answer behind a tus-js-client error ('' without one). */
export function bodyOf(error) {
  return error?.originalResponse?.getBody?.() ?? '';
}

/** Worth another try: no answer, the server's trouble, too many requests, a busy lock or a moved offset. */
function retryable(error) {
  const status = statusOf(error);
  if (status === 0 || status >= 500 || status === 429 || status === 423) return true;
  return status === 409 && /current offset/.test(bodyOf(error));
}

/**
 * A resumable upload of `file`. `events`: onResuming(offset) when the server says where an earlier upload
 * stands, onProgress(sent, total), onWaitingForHash() when the last chunk waits for the SHA-256,
 * onHashFailed(message), onSuccess(fileId), onError(error). `versionOf`: the id of the file this upload
 * becomes the new version of (Upload-Metadata `fileId`). `events.folderId`: the folder it goes into
 * (absent: the top level), part of the resume fingerprint so the same file into another folder is a new upload.
 */
export function createTusUpload(file, events, { versionOf = null } = {}) {
  const empty = file.size === 0;
  const hash = empty ? { promise: Promise.resolve(EMPTY_SHA256), cancel() {} } : hashInWorker(file);
  let hashed = empty;
  let stopped = false;
  /** A creating POST is on its way: its upload exists on the server before we know its URL. */
  let creating = false;
  /** A cancel that came while creating: carried out (DELETE) as soon as the URL is known. */
  let pendingCancel = null;
  hash.promise.then(
    () => {
      hashed = true;
    },
    (error) => {
      if (!stopped && !hash.cancelled) events.onHashFailed?.(error.message);
    },
  );
  const upload = new window.tus.Upload(file, {
    endpoint: '/api/v1/tus',
    chunkSize: tusChunkSize,
    retryDelays: RETRY_DELAYS,
    headers: { 'X-CSRF-Token': csrfToken },
    // An empty file is complete at creation (no PATCH): its SHA-256 is known in advance.
    metadata: {
      filename: file.name,
      filetype: file.type || 'application/octet-stream',
      ...(empty ? { sha256: EMPTY_SHA256 } : {}),
      ...(versionOf ? { fileId: versionOf } : {}),
      ...(events.folderId ? { folderId: events.folderId } : {}),
    },
    // A new version of a file resumes only as that: never as a plain upload of the same bytes.
    fingerprint: (f) =>
      Promise.resolve(
        [
          'tess',
          userId,
          f.name,
          f.type,
          f.size,
          f.lastModified,
          events.folderId ?? '',
          ...(versionOf ? [versionOf] : []),
        ].join('|'),
      ),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    // Once stopped, only the cancel's DELETE is worth retrying (it can meet the lock its aborted PATCH
    // still holds for a moment: 423).
    onShouldRetry: (error) =>
      (!stopped || error.originalRequest?.getMethod() === 'DELETE') && retryable(error),
    onBeforeRequest: async (req) => {
      if (req.getMethod() === 'POST') creating = true;
      if (req.getMethod() !== 'PATCH') return;
      if (Number(req.getHeader('Upload-Offset')) + tusChunkSize < file.size) return;
      // The last chunk: it goes once the SHA-256 is known (without it when hashing failed).
      if (!hashed) events.onWaitingForHash?.();
      const sha256 = await hash.promise.catch(() => null);
      if (stopped) throw new Error('paused');
      if (sha256) req.setHeader('Tess-Upload-Sha256', sha256);
    },
    onUploadUrlAvailable: () => {
      creating = false;
      if (!pendingCancel) return;
      const { resolve, reject } = pendingCancel;
      pendingCancel = null;
      upload.abort(true).then(resolve, reject);
    },
    onAfterResponse: (req, res) => {
      if (req.getMethod() === 'HEAD' && res.getStatus() === 200) {
        events.onResuming?.(Number(res.getHeader('Upload-Offset')) || 0);
      }
    },
    onProgress: (sent, total) => events.onProgress?.(sent, total),
    onSuccess: () => {
      hash.cancel();
      events.onSuccess(upload.url.split('/').pop());
    },
    onError: (error) => {
      hash.cancel();
      if (pendingCancel) {
        // The creation failed: there is nothing on the server to cancel.
        pendingCancel.resolve();
        pendingCancel = null;
        return;
      }
      events.onError(error);
    },
  });

  return {
    /** Continues an earlier upload of the same file when this browser remembers one, else creates one. */
    async start() {
      const previous = await upload.findPreviousUploads().catch(() => []);
      previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    },
    /** Stops sending; the server keeps what it received. */
    pause() {
      stopped = true;
      return upload.abort(false);
    },
    /** Asks the server for its offset and goes on from there. */
    resume() {
      stopped = false;
      upload.start();
    },
    /**
     * Stops and sends DELETE: the server keeps nothing of it. While the creating POST is under way the
     * upload may already exist without our knowing its URL: the DELETE then follows its answer.
     */
    cancel() {
      stopped = true;
      hash.cancel();
      if (creating && !upload.url) {
        return new Promise((resolve, reject) => {
          pendingCancel = { resolve, reject };
        });
      }
      return upload.abort(true);
    },
  };
}
