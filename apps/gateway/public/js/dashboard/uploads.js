// Uploads: the drop zone and picker, the client-side size check, a small queue of resumable uploads
// (tus-upload.js: their transfer progress, speed and time left, pause, resume, cancel) and one card per
// file whose second bar follows the worker's job.
import { api, errorMessage, parseJson } from './api-client.js';
import { onRowFilled, refreshRow, setRowStatus, storedFileNamed, upsertRow } from './file-table.js';
import { duplicateText, formatBytes, formatDuration, shortHash } from './format.js';
import { hideModal, showModal } from './modals.js';
import { announce, dom, field, maxFileSize, maxFileSizeLabel, setText } from './page.js';
import { isSignedOut, onSignedOut, SIGNED_OUT_MESSAGE } from './session.js';
import { groupedToast } from './toasts.js';
import { bodyOf, createTusUpload, statusOf } from './tus-upload.js';
import { view } from './view.js';

const FINAL = new Set(['stored', 'failed', 'rejected', 'cancelled']);
/** Final statuses of a new version's upload row that never became a version. */
const FAILED_UPLOAD = new Set(['failed', 'rejected', 'infected']);
const STATE_ICON = {
  waiting: 'bi-hourglass',
  uploading: 'bi-cloud-arrow-up',
  paused: 'bi-pause-circle',
  processing: 'bi-gear',
  stored: 'bi-check-circle-fill',
  failed: 'bi-x-circle-fill',
  rejected: 'bi-slash-circle',
  cancelled: 'bi-dash-circle',
};
const STAGE_TEXT = {
  queued: 'waiting for a worker',
  encrypting: 'hashing and encrypting',
  finalizing: 'finalizing',
  stored: 'stored',
  failed: 'failed',
};
/** Parallel transfers; the rest wait their turn in the queue. */
const CONCURRENCY = 3;
/** The window (ms) the upload speed is measured over. */
const RATE_WINDOW_MS = 5000;

const queue = [];
/** The uploads the server accepted, by file id: the ones job events and reconciling apply to. */
export const byFileId = new Map();
/** Events that arrived before the upload's 202 told us its file id. */
const early = new Map();
let active = 0;

export function isFinal(up) {
  return FINAL.has(up.state);
}

function setState(up, state, label) {
  up.state = state;
  up.card.dataset.state = state;
  setText(up.card, 'state-label', label);
  field(up.card, 'icon').className = `bi upload-card-icon ${STATE_ICON[state]}`;
  const final = isFinal(up);
  up.card.querySelector('[data-action="cancel"]').hidden = final || state === 'processing';
  up.card.querySelector('[data-action="pause"]').hidden = state !== 'uploading';
  up.card.querySelector('[data-action="resume"]').hidden = state !== 'paused';
  if (state !== 'uploading') setText(up.card, 'rate', '');
  up.card.querySelector('[data-action="dismiss"]').hidden = !final;
  dom.clearFinished.disabled = !uploadsList().some(isFinal);
}

function setBar(up, which, percent, text, tone) {
  const bar = up.card.querySelector(`[data-bar="${which}"]`);
  const value = Math.max(0, Math.min(100, percent));
  bar.setAttribute('aria-valuenow', String(Math.floor(value)));
  bar.setAttribute('aria-valuetext', `${Math.floor(value)}%, ${text}`);
  const inner = bar.firstElementChild;
  inner.style.width = `${value}%`;
  if (tone) inner.className = `progress-bar ${tone}`;
  setText(up.card, `${which}-text`, text);
}

function setMessage(up, text, tone = 'text-body-secondary') {
  const node = setText(up.card, 'message', text);
  node.hidden = !text;
  node.className = `small mb-0 mt-2 text-break ${tone}`;
}

const allUploads = [];
function uploadsList() {
  return allUploads.filter((up) => up.card.isConnected);
}

/** Names the card: the picked file's name until the server answers with the name it stored. */
function setName(up, name) {
  up.name = name;
  setText(up.card, 'name', name);
  field(up.card, 'name').title = name;
  up.card.setAttribute('aria-label', `Upload of ${name}`);
  up.card.querySelector('[data-action="cancel"]').setAttribute('aria-label', `Cancel the upload of ${name}`);
  up.card.querySelector('[data-action="pause"]').setAttribute('aria-label', `Pause the upload of ${name}`);
  up.card.querySelector('[data-action="resume"]').setAttribute('aria-label', `Resume the upload of ${name}`);
  up.card.querySelector('[data-action="dismiss"]').setAttribute('aria-label', `Dismiss ${name}`);
}

/** `versionOf`: the id of the file this upload becomes the new version of (tus Upload-Metadata fileId). */
function createUpload(file, versionOf = null) {
  const item = dom.cardTemplate.content.firstElementChild.cloneNode(true);
  const card = item.querySelector('.upload-card');
  setText(card, 'size', formatBytes(file.size));
  const up = {
    file,
    item,
    card,
    folderId: view.folderId,
    state: 'waiting',
    fileId: null,
    versionOf,
    tus: null,
    slot: false,
    processPercent: 0,
    lastEvent: 0,
  };
  setName(up, versionOf ? `${file.name} (new version)` : file.name);
  card.querySelector('[data-action="cancel"]').addEventListener('click', () => cancelUpload(up));
  card.querySelector('[data-action="pause"]').addEventListener('click', () => pauseUpload(up));
  card.querySelector('[data-action="resume"]').addEventListener('click', () => resumeUpload(up));
  card.querySelector('[data-action="dismiss"]').addEventListener('click', () => dismissUpload(up));
  dom.uploadList.append(item);
  dom.uploads.hidden = false;
  allUploads.push(up);
  return up;
}

function dismissUpload(up) {
  const next = up.item.nextElementSibling ?? up.item.previousElementSibling;
  up.item.remove();
  if (!dom.uploadList.children.length) dom.uploads.hidden = true;
  dom.clearFinished.disabled = !uploadsList().some(isFinal);
  (next?.querySelector('button:not([hidden])') ?? dom.dropZone).focus();
}

/** A transfer slot of the queue: taken while an upload sends, given back when it ends or pauses. */
function takeSlot(up) {
  if (up.slot) return;
  up.slot = true;
  active++;
}

function releaseSlot(up) {
  if (!up.slot) return;
  up.slot = false;
  active--;
  pump();
}

function cancelUpload(up) {
  if (isFinal(up)) return;
  const index = queue.indexOf(up);
  if (index >= 0) queue.splice(index, 1);
  up.cancelled = true;
  releaseSlot(up);
  setBar(up, 'transfer', 0, 'cancelled', 'bg-secondary');
  setBar(up, 'process', 0, '—');
  setState(up, 'cancelled', 'Cancelled');
  if (!up.tus) {
    setMessage(up, 'Cancelled; nothing was stored.');
    announce(`Upload of ${up.name} cancelled.`);
    return;
  }
  setMessage(up, 'Cancelling…');
  // tus termination: DELETE removes what the server received, its row and its key.
  up.tus.cancel().then(
    () => {
      setMessage(up, 'Cancelled; nothing was stored.');
      announce(`Upload of ${up.name} cancelled.`);
    },
    (error) => {
      const status = statusOf(error);
      setMessage(
        up,
        status === 404
          ? 'Cancelled; nothing was stored.'
          : `Could not cancel on the server: ${errorMessage(status, parseJson(bodyOf(error)))} Unfinished uploads are removed when they expire.`,
        status === 404 ? 'text-body-secondary' : 'text-danger',
      );
    },
  );
}

function pauseUpload(up) {
  if (up.state !== 'uploading' || !up.tus) return;
  up.paused = true;
  void up.tus.pause();
  releaseSlot(up);
  setState(up, 'paused', 'Paused');
  setText(up.card, 'transfer-text', `paused at ${formatBytes(up.sent ?? 0)} of ${formatBytes(up.file.size)}`);
  up.card.querySelector('[data-action="resume"]').focus();
  announce(`Upload of ${up.name} paused.`);
}

function resumeUpload(up) {
  if (up.state !== 'paused' || !up.tus) return;
  up.paused = false;
  takeSlot(up);
  up.samples = [];
  setState(up, 'uploading', 'Uploading');
  up.card.querySelector('[data-action="pause"]').focus();
  up.tus.resume();
}

/** Speed over the last few seconds and the time left at that speed, next to the transfer bar. */
function showRate(up, sent) {
  const now = Date.now();
  up.samples = (up.samples ?? []).filter((s) => now - s.at <= RATE_WINDOW_MS);
  up.samples.push({ at: now, sent });
  const first = up.samples[0];
  const seconds = (now - first.at) / 1000;
  if (seconds < 0.5 || sent <= first.sent) return;
  const rate = (sent - first.sent) / seconds;
  setText(up.card, 'rate', `${formatBytes(rate)}/s · ${formatDuration((up.file.size - sent) / rate)} left`);
}

/** Asks what to do with a file named like an existing one: 'version', 'both' or 'cancel'. */
function askSameName(name) {
  setText(dom.sameNameModal, 'filename', name);
  return new Promise((resolve) => {
    let choice = 'cancel';
    const buttons = Array.from(dom.sameNameModal.querySelectorAll('[data-choice]'));
    const onClick = (event) => {
      choice = event.currentTarget.dataset.choice;
      hideModal(dom.sameNameModal);
    };
    for (const button of buttons) button.addEventListener('click', onClick);
    dom.sameNameModal.addEventListener(
      'hidden.bs.modal',
      () => {
        for (const button of buttons) button.removeEventListener('click', onClick);
        resolve(choice);
      },
      { once: true },
    );
    showModal(dom.sameNameModal);
  });
}

/**
 * Files picked or dropped: one named like a stored file of the list (the user's files; their folder once
 * folders exist) asks first whether it is a new version of that file or a file of its own.
 */
async function addFiles(fileList) {
  const picked = Array.from(fileList ?? []);
  if (!picked.length || isSignedOut()) return;
  const files = [];
  for (const file of picked) {
    const existing = file.size <= maxFileSize ? storedFileNamed(file.name.normalize('NFC')) : null;
    if (!existing) {
      files.push({ file, versionOf: null });
      continue;
    }
    const choice = await askSameName(file.name);
    if (choice === 'cancel') continue;
    files.push({ file, versionOf: choice === 'version' ? existing : null });
  }
  enqueueFiles(files);
}

/** Uploads `file` as the new version of file `fileId` (the versions panel). */
export function addVersionUpload(file, fileId) {
  if (!isSignedOut()) enqueueFiles([{ file, versionOf: fileId }]);
}

function enqueueFiles(files) {
  let accepted = 0;
  for (const { file, versionOf } of files) {
    const up = createUpload(file, versionOf);
    if (file.size > maxFileSize) {
      const text = `${file.name} is ${formatBytes(file.size)}, over the ${maxFileSizeLabel} limit per file. It was not uploaded.`;
      setBar(up, 'transfer', 0, 'not sent', 'bg-danger');
      setBar(up, 'process', 0, '—');
      setState(up, 'rejected', 'Too large');
      setMessage(up, text, 'text-danger');
      groupedToast('error', 'too-large', file.name, (n, names, list) =>
        n === 1
          ? { title: 'File too large', text }
          : {
              title: `${n} files too large`,
              text: `${list(names)} are over the ${maxFileSizeLabel} limit per file; they were not uploaded.`,
            },
      );
      continue;
    }
    setState(up, 'waiting', 'Waiting');
    queue.push(up);
    accepted++;
  }
  if (accepted) announce(`${accepted} ${accepted === 1 ? 'file' : 'files'} added to the upload queue.`);
  pump();
}

function pump() {
  while (active < CONCURRENCY && queue.length) {
    const up = queue.shift();
    takeSlot(up);
    send(up);
  }
}

/** A tus-js-client error in words: the server's JSON message (413, 415, quota, ...) or what went wrong. */
function tusErrorMessage(error) {
  const status = statusOf(error);
  if (status) return errorMessage(status, parseJson(bodyOf(error)));
  return 'The upload did not reach the server (network error), even after several tries. Pick the file again to resume it.';
}

function send(up) {
  const total = up.file.size;
  setState(up, 'uploading', 'Uploading');
  setBar(up, 'transfer', 0, `0 B of ${formatBytes(total)}`);
  up.tus = createTusUpload(
    up.file,
    {
      // Into the folder on screen when the upload started.
      folderId: up.folderId,
      onResuming: (offset) => {
        if (up.cancelled || offset <= 0) return;
        setMessage(
          up,
          `Resuming from ${formatBytes(offset)}: the server already has that much of this file.`,
        );
        setBar(
          up,
          'transfer',
          (offset / Math.max(total, 1)) * 100,
          `${formatBytes(offset)} of ${formatBytes(total)}`,
        );
      },
      onProgress: (sent) => {
        if (up.cancelled || up.paused) return;
        up.sent = sent;
        setBar(
          up,
          'transfer',
          total ? (sent / total) * 100 : 100,
          `${formatBytes(sent)} of ${formatBytes(total)}`,
        );
        showRate(up, sent);
      },
      onWaitingForHash: () => {
        if (!up.cancelled) setText(up.card, 'rate', 'finishing the SHA-256 of your copy…');
      },
      onHashFailed: (message) => {
        up.hashFailed = message;
      },
      onSuccess: (fileId) => {
        releaseSlot(up);
        if (up.cancelled) return;
        onAccepted(up, fileId);
      },
      onError: (error) => {
        releaseSlot(up);
        if (!up.cancelled) failUpload(up, tusErrorMessage(error));
      },
    },
    { versionOf: up.versionOf },
  );
  up.tus.start().catch((error) => {
    releaseSlot(up);
    failUpload(up, error.message);
  });
}

function onAccepted(up, fileId) {
  up.fileId = fileId;
  up.lastEvent = Date.now();
  byFileId.set(fileId, up);
  up.card.dataset.fileId = fileId;
  setBar(up, 'transfer', 100, 'done', 'bg-success');
  setState(up, 'processing', 'Processing');
  setBar(up, 'process', 0, STAGE_TEXT.queued);
  setMessage(up, '');
  announce(`${up.name} uploaded; it is being hashed and encrypted.`);
  // A new version is no row of its own: its file's row changes once it is stored.
  if (!up.versionOf) void refreshRow(fileId, true);
  const buffered = early.get(fileId);
  early.delete(fileId);
  if (buffered?.completed) completeUpload(up, buffered.completed);
  else if (buffered?.failed) failProcessing(up, buffered.failed.error);
  else if (buffered?.progress) applyProgress(up, buffered.progress);
  // Events are best effort: read the job state once so an event missed in between cannot leave a stale bar.
  void reconcile(up);
}

function failUpload(up, message) {
  if (isFinal(up)) return;
  setBar(
    up,
    'transfer',
    Number(up.card.querySelector('[data-bar="transfer"]').getAttribute('aria-valuenow')),
    'failed',
    'bg-danger',
  );
  setBar(up, 'process', 0, '—');
  setState(up, 'failed', 'Upload failed');
  setMessage(up, message, 'text-danger');
  groupedToast('error', 'upload-failed', up.name, (n, names, list) =>
    n === 1
      ? { title: 'Upload failed', text: `${up.name}: ${message}` }
      : { title: `${n} uploads failed`, text: `${list(names)}: see each card for why.` },
  );
}

export function applyProgress(up, progress) {
  if (isFinal(up)) return;
  up.lastEvent = Date.now();
  const { stage, bytesDone, bytesTotal } = progress;
  let percent = bytesTotal > 0 ? (bytesDone / bytesTotal) * 100 : stage === 'queued' ? 0 : 100;
  percent = Math.max(percent, up.processPercent);
  up.processPercent = percent;
  const text =
    stage === 'encrypting' && bytesTotal > 0
      ? `${STAGE_TEXT.encrypting} · ${formatBytes(bytesDone)} of ${formatBytes(bytesTotal)}`
      : (STAGE_TEXT[stage] ?? stage);
  setBar(up, 'process', percent, text);
  if (stage !== 'queued') setRowStatus(up.fileId, 'processing');
}

export function completeUpload(up, result) {
  if (isFinal(up)) return;
  up.processPercent = 100;
  setBar(up, 'process', 100, 'stored', 'bg-success');
  setState(up, 'stored', 'Stored');
  showStored(up, result);
  if (result.filename && !up.versionOf && result.filename !== up.name) setName(up, result.filename);
  const toast = () => {
    groupedToast('success', 'stored', up.name, (n, names, list) =>
      n === 1
        ? { title: 'Stored', text: `${up.name} is encrypted and stored.` }
        : { title: `${n} files stored`, text: `${list(names)} are encrypted and stored.` },
    );
    announce(`${up.name} is stored.`);
  };
  // The toast names the file as the server stored it (path parts and control characters gone): a job event
  // can come before this page has read the file's row, so read it first when its name is not known yet.
  // (Read here, not through refreshRow: a later refresh of the same row would drop that one's answer.)
  if (result.filename || up.versionOf || up.nameConfirmed) toast();
  else {
    api('GET', `/api/v1/files/${encodeURIComponent(up.fileId)}`)
      .then((file) => {
        if (file.filename && file.filename !== up.name) setName(up, file.filename);
      })
      .catch(() => undefined)
      .finally(toast);
  }
}

/** The stored card's line: the SHA-256, and whether it is the one this browser computed of your copy. */
function showStored(up, file) {
  const verified = file.clientVerified === true;
  const text = file.sha256
    ? `SHA-256 ${shortHash(file.sha256)}${verified ? ' · matches the file on your computer' : ''}`
    : 'Stored.';
  setMessage(
    up,
    up.hashFailed && !verified ? `${text} (not checked against your copy: ${up.hashFailed})` : text,
    'text-success',
  );
  if (file.sha256) field(up.card, 'message').title = file.sha256;
}

/** A worker's failure reason as a card says it (the server's words stay in the tooltip). */
function failureText(error) {
  if (/^client-hash-mismatch:/.test(error ?? '')) {
    return 'The file that arrived is not the one on your computer (their SHA-256 differ), so nothing was stored. Upload it again.';
  }
  return error || 'Processing failed.';
}

export function failProcessing(up, error) {
  if (isFinal(up)) return;
  setBar(up, 'process', up.processPercent, 'failed', 'bg-danger');
  setState(up, 'failed', 'Failed');
  const message = failureText(error);
  setMessage(up, message, 'text-danger');
  field(up.card, 'message').title = error ?? '';
  groupedToast('error', 'processing-failed', up.name, (n, names, list) =>
    n === 1
      ? { title: 'Processing failed', text: `${up.name}: ${message}` }
      : { title: `${n} files failed`, text: `${list(names)}: see each card for why.` },
  );
}

/** Brings one upload's card in line with the job state over REST. */
export async function reconcile(up) {
  if (!up.fileId || isFinal(up)) return;
  up.lastEvent = Date.now();
  if (up.versionOf) {
    await reconcileVersion(up);
    return;
  }
  try {
    const job = await api('GET', `/api/v1/jobs/${encodeURIComponent(up.fileId)}`);
    if (job.status === 'completed') {
      const file = await api('GET', `/api/v1/files/${encodeURIComponent(up.fileId)}`);
      if (file.status === 'stored') completeUpload(up, file);
      else failProcessing(up, file.error || `The file is ${file.status}.`);
      upsertRow(file);
    } else if (job.status === 'failed') {
      failProcessing(up, job.error);
      void refreshRow(up.fileId);
    } else if (job.progress) {
      applyProgress(up, job.progress);
    }
  } catch (error) {
    if (error.status === 404) failProcessing(up, 'The file was deleted before it was stored.');
  }
}

/**
 * A new version: its upload row is listed with its file's versions until it is stored, then folded into
 * the file (its job id names nothing any more), so the file's versions tell where it stands.
 */
async function reconcileVersion(up) {
  try {
    const list = await api('GET', `/api/v1/files/${encodeURIComponent(up.versionOf)}/versions`);
    const pending = list.uploads.find((u) => u.id === up.fileId);
    if (pending && FAILED_UPLOAD.has(pending.status)) {
      failProcessing(up, pending.error || `The new version is ${pending.status}.`);
      return;
    }
    if (pending) return;
    const file = await api('GET', `/api/v1/files/${encodeURIComponent(up.versionOf)}`);
    completeUpload(up, file);
    upsertRow(file, true);
  } catch (error) {
    if (error.status === 404) failProcessing(up, 'The file was deleted before its new version was stored.');
  }
}

export function remember(fileId, patch) {
  const now = Date.now();
  for (const [id, entry] of early) if (now - entry.at > 120_000) early.delete(id);
  early.set(fileId, { ...early.get(fileId), ...patch, at: now });
}

function hasFiles(event) {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

let dragDepth = 0;

/** Binds the drop zone, the picker and "Clear finished", and guards the page against stray drops. */
export function initUploads() {
  // A stored upload whose content another of the user's files already has: its card says so too.
  onRowFilled((file) => {
    const up = byFileId.get(file.id);
    if (!up) return;
    // The name the server stored (path parts and control characters removed), as the list shows it.
    if (file.filename && file.filename !== up.name) setName(up, file.filename);
    up.nameConfirmed = true;
    if (up.state === 'stored' && file.status === 'stored') showStored(up, file);
    const note = field(up.card, 'duplicate');
    note.hidden = !file.duplicateOf;
    note.textContent = file.duplicateOf ? `${duplicateText(file.duplicateOf)}.` : '';
  });
  // Signed out: the uploads still waiting for their turn would only meet a 401.
  onSignedOut(() => {
    // Those under way stop too; the server keeps what it has, so picking the file again after signing in
    // resumes it.
    for (const up of allUploads) {
      if (up.state !== 'uploading' && up.state !== 'paused') continue;
      void up.tus?.pause();
      releaseSlot(up);
      setBar(up, 'transfer', ((up.sent ?? 0) / Math.max(up.file.size, 1)) * 100, 'stopped', 'bg-secondary');
      setState(up, 'failed', 'Stopped');
      setMessage(up, `${SIGNED_OUT_MESSAGE} Pick the file again then: it resumes.`, 'text-danger');
    }
    for (const up of queue.splice(0)) {
      up.cancelled = true;
      setBar(up, 'transfer', 0, 'not sent', 'bg-secondary');
      setBar(up, 'process', 0, '—');
      setState(up, 'cancelled', 'Not sent');
      setMessage(up, SIGNED_OUT_MESSAGE, 'text-danger');
    }
  });

  window.addEventListener('beforeunload', (event) => {
    if (uploadsList().some((up) => ['uploading', 'waiting', 'paused'].includes(up.state))) {
      event.preventDefault();
      event.returnValue = '';
    }
  });

  dom.clearFinished.addEventListener('click', () => {
    for (const up of uploadsList()) if (isFinal(up)) up.item.remove();
    if (!dom.uploadList.children.length) dom.uploads.hidden = true;
    dom.clearFinished.disabled = true;
    dom.dropZone.focus();
  });

  // The drop zone is a button: click, Enter or Space opens the picker; files can also be dropped on it.
  dom.dropZone.addEventListener('click', () => dom.fileInput.click());
  dom.fileInput.addEventListener('change', () => {
    void addFiles(dom.fileInput.files);
    dom.fileInput.value = '';
  });

  dom.dropZone.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth++;
    dom.dropZone.classList.add('is-dragover');
  });
  dom.dropZone.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  dom.dropZone.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dom.dropZone.classList.remove('is-dragover');
  });
  dom.dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dragDepth = 0;
    dom.dropZone.classList.remove('is-dragover');
    void addFiles(event.dataTransfer?.files);
  });
  // A file dropped next to the zone must not make the browser navigate away from the dashboard.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event) && !dom.dropZone.contains(event.target)) {
        event.preventDefault();
        if (event.dataTransfer) event.dataTransfer.dropEffect = 'none';
      }
    });
  }
}
