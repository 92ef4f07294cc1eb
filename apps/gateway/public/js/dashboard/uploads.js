// Uploads: the drop zone and picker, the client-side size check, a small queue of XHR uploads (their
// transfer progress) and one card per file whose second bar follows the worker's job.
import { api, errorMessage, parseJson } from './api-client.js';
import { onRowFilled, refreshRow, setRowStatus, upsertRow } from './file-table.js';
import { duplicateText, formatBytes, shortHash } from './format.js';
import { announce, csrfToken, dom, field, maxFileSize, maxFileSizeLabel, setText } from './page.js';
import { isSignedOut, onSignedOut, SIGNED_OUT_MESSAGE } from './session.js';
import { groupedToast } from './toasts.js';
import { view } from './view.js';

const FINAL = new Set(['stored', 'failed', 'rejected', 'cancelled']);
const STATE_ICON = {
  waiting: 'bi-hourglass',
  uploading: 'bi-cloud-arrow-up',
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
  up.card.querySelector('[data-action="dismiss"]').setAttribute('aria-label', `Dismiss ${name}`);
}

function createUpload(file) {
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
    xhr: null,
    processPercent: 0,
    lastEvent: 0,
  };
  setName(up, file.name);
  card.querySelector('[data-action="cancel"]').addEventListener('click', () => cancelUpload(up));
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

function cancelUpload(up) {
  if (isFinal(up)) return;
  const index = queue.indexOf(up);
  if (index >= 0) queue.splice(index, 1);
  up.cancelled = true;
  up.xhr?.abort();
  setBar(up, 'transfer', 0, 'cancelled', 'bg-secondary');
  setBar(up, 'process', 0, '—');
  setState(up, 'cancelled', 'Cancelled');
  setMessage(up, 'Cancelled; nothing was stored.');
  announce(`Upload of ${up.name} cancelled.`);
}

function addFiles(fileList) {
  const files = Array.from(fileList ?? []);
  if (!files.length || isSignedOut()) return;
  let accepted = 0;
  for (const file of files) {
    const up = createUpload(file);
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
    active++;
    send(queue.shift());
  }
}

function send(up) {
  const xhr = new XMLHttpRequest();
  up.xhr = xhr;
  const total = up.file.size;
  xhr.open('POST', '/api/v1/uploads');
  xhr.setRequestHeader('X-CSRF-Token', csrfToken);
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.upload.addEventListener('progress', (event) => {
    if (!event.lengthComputable || up.cancelled) return;
    const done = Math.min(total, Math.round((event.loaded / event.total) * total));
    setBar(
      up,
      'transfer',
      (event.loaded / event.total) * 100,
      `${formatBytes(done)} of ${formatBytes(total)}`,
    );
  });
  xhr.upload.addEventListener('load', () => {
    if (up.cancelled) return;
    setBar(up, 'transfer', 100, 'sent');
    setBar(up, 'process', 0, 'waiting for the server');
  });
  xhr.addEventListener('load', () => onResponse(up, xhr));
  xhr.addEventListener('error', () => {
    if (!up.cancelled) failUpload(up, 'The upload did not reach the server (network error). Try again.');
  });
  xhr.addEventListener('loadend', () => {
    up.xhr = null;
    active--;
    pump();
  });
  const form = new FormData();
  // Into the folder on screen when the upload started.
  if (up.folderId) form.append('folderId', up.folderId);
  form.append('file', up.file, up.file.name);
  setState(up, 'uploading', 'Uploading');
  setBar(up, 'transfer', 0, `0 B of ${formatBytes(total)}`);
  xhr.send(form);
}

function onResponse(up, xhr) {
  if (up.cancelled) return;
  const body = parseJson(xhr.responseText);
  const accepted = xhr.status === 202 ? body?.files?.[0] : null;
  if (!accepted) {
    failUpload(
      up,
      xhr.status === 202 ? 'The server sent an unexpected answer.' : errorMessage(xhr.status, body),
    );
    return;
  }
  up.fileId = accepted.id;
  if (accepted.filename) setName(up, accepted.filename);
  up.lastEvent = Date.now();
  byFileId.set(accepted.id, up);
  up.card.dataset.fileId = accepted.id;
  setBar(up, 'transfer', 100, 'done', 'bg-success');
  setState(up, 'processing', 'Processing');
  setBar(up, 'process', 0, STAGE_TEXT.queued);
  announce(`${up.name} uploaded; it is being hashed and encrypted.`);
  void refreshRow(accepted.id, true);
  const buffered = early.get(accepted.id);
  early.delete(accepted.id);
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
  setMessage(up, result.sha256 ? `SHA-256 ${shortHash(result.sha256)}` : 'Stored.', 'text-success');
  if (result.sha256) field(up.card, 'message').title = result.sha256;
  groupedToast('success', 'stored', up.name, (n, names, list) =>
    n === 1
      ? { title: 'Stored', text: `${up.name} is encrypted and stored.` }
      : { title: `${n} files stored`, text: `${list(names)} are encrypted and stored.` },
  );
  announce(`${up.name} is stored.`);
}

export function failProcessing(up, error) {
  if (isFinal(up)) return;
  setBar(up, 'process', up.processPercent, 'failed', 'bg-danger');
  setState(up, 'failed', 'Failed');
  const message = error || 'Processing failed.';
  setMessage(up, message, 'text-danger');
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
    const note = field(up.card, 'duplicate');
    note.hidden = !file.duplicateOf;
    note.textContent = file.duplicateOf ? `${duplicateText(file.duplicateOf)}.` : '';
  });
  // Signed out: the uploads still waiting for their turn would only meet a 401.
  onSignedOut(() => {
    for (const up of queue.splice(0)) {
      up.cancelled = true;
      setBar(up, 'transfer', 0, 'not sent', 'bg-secondary');
      setBar(up, 'process', 0, '—');
      setState(up, 'cancelled', 'Not sent');
      setMessage(up, SIGNED_OUT_MESSAGE, 'text-danger');
    }
  });

  window.addEventListener('beforeunload', (event) => {
    if (uploadsList().some((up) => up.state === 'uploading' || up.state === 'waiting')) {
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
    addFiles(dom.fileInput.files);
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
    addFiles(event.dataTransfer?.files);
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
