// TESS dashboard (/home): uploads with two progress phases, live job events over Socket.IO and the
// "My files" list. Served from /static/js under a CSP of script-src 'self': no inline code, and every
// string from the server or the user reaches the DOM through textContent or an attribute, never HTML.
import { io } from '/assets/socket.io/socket.io.esm.min.js';

const root = document.getElementById('dashboard');
const bs = window.bootstrap;
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
const maxFileSize = Number(root.dataset.maxFileSize);
const maxFileSizeLabel = root.dataset.maxFileSizeLabel ?? '';
const pageSize = Number(root.dataset.pageSize) || 25;
/** Parallel transfers; the rest wait their turn in the queue. */
const CONCURRENCY = 3;
/** Without an event for this long, an upload's job state is re-read over REST. */
const STALE_AFTER_MS = 8000;

const $ = (id) => document.getElementById(id);
const dom = {
  dropZone: $('drop-zone'),
  fileInput: $('file-input'),
  uploads: $('uploads'),
  uploadList: $('upload-list'),
  clearFinished: $('clear-finished'),
  filesWrap: $('files-wrap'),
  filesBody: $('files-body'),
  filesHeading: $('files-heading'),
  emptyState: $('empty-state'),
  filesFooter: $('files-footer'),
  loadMore: $('load-more'),
  refresh: $('refresh-files'),
  toasts: $('toasts'),
  announcer: $('announcer'),
  liveStatus: $('live-status'),
  deleteModal: $('delete-modal'),
  confirmDelete: $('confirm-delete'),
  rowTemplate: $('file-row-template'),
  cardTemplate: $('upload-card-template'),
};

// ---------------------------------------------------------------------------------------------------
// Small helpers

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** The same rendering as the server's formatBytes helper. */
function formatBytes(bytes) {
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : timeFormat.format(date);
}

function shortHash(hash) {
  return hash ? `${hash.slice(0, 12)}…` : '';
}

function field(scope, name) {
  return scope.querySelector(`[data-field="${name}"]`);
}

function setText(scope, name, text) {
  const node = field(scope, name);
  if (node) node.textContent = text;
  return node;
}

/** Shows the element with that text, or hides it when the text is empty. */
function setOptionalText(scope, name, text) {
  const node = setText(scope, name, text ?? '');
  if (node) node.hidden = !text;
}

function announce(text) {
  dom.announcer.textContent = '';
  window.setTimeout(() => {
    dom.announcer.textContent = text;
  }, 50);
}

function icon(name) {
  const i = document.createElement('i');
  i.className = `bi bi-${name}`;
  i.setAttribute('aria-hidden', 'true');
  return i;
}

// ---------------------------------------------------------------------------------------------------
// Toasts

const TOAST_STYLE = { success: 'text-bg-success', error: 'text-bg-danger', info: 'text-bg-dark' };
const TOAST_ICON = {
  success: 'check-circle-fill',
  error: 'exclamation-triangle-fill',
  info: 'info-circle-fill',
};

/** A Bootstrap toast; errors stay longer and are announced assertively. */
function toast(kind, title, text, link) {
  const el = document.createElement('div');
  el.className = `toast border-0 ${TOAST_STYLE[kind]}`;
  el.dataset.kind = kind;
  el.setAttribute('aria-atomic', 'true');
  if (kind === 'error') el.setAttribute('role', 'alert');
  const row = document.createElement('div');
  row.className = 'd-flex';
  const body = document.createElement('div');
  body.className = 'toast-body';
  const heading = document.createElement('strong');
  heading.className = 'd-block';
  heading.append(icon(TOAST_ICON[kind]), ` ${title}`);
  const message = document.createElement('span');
  message.className = 'text-break';
  message.textContent = text;
  body.append(heading, message);
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.className = 'link-light ms-1';
    a.textContent = link.text;
    body.append(a);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn-close btn-close-white me-2 m-auto';
  close.setAttribute('data-bs-dismiss', 'toast');
  close.setAttribute('aria-label', 'Close');
  row.append(body, close);
  el.append(row);
  dom.toasts.append(el);
  // Keep the stack short: the oldest toasts give way.
  const shown = dom.toasts.querySelectorAll('.toast');
  for (let i = 0; i < shown.length - 5; i++) bs.Toast.getOrCreateInstance(shown[i]).hide();
  el.addEventListener('hidden.bs.toast', () => el.remove());
  bs.Toast.getOrCreateInstance(el, { delay: kind === 'error' ? 12000 : 6000 }).show();
}

// ---------------------------------------------------------------------------------------------------
// REST

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let sessionEndedShown = false;

function sessionEnded() {
  if (sessionEndedShown) return;
  sessionEndedShown = true;
  setLive('offline', 'Signed out');
  toast('error', 'Session ended', 'Your session has ended; nothing more can be uploaded from this page.', {
    href: '/login',
    text: 'Sign in again',
  });
}

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** The server's JSON `message` when it sent one, else a plain description of the status. */
function errorMessage(status, body) {
  if (status === 401) sessionEnded();
  if (body && typeof body.message === 'string' && body.message) return body.message;
  if (status === 0) return 'The server could not be reached. Check the connection and try again.';
  if (status === 401) return 'Your session has ended. Sign in again.';
  return `The server answered ${status}.`;
}

async function api(method, path) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, errorMessage(0, null));
  }
  if (res.status === 204) return null;
  const body = parseJson(await res.text());
  if (!res.ok) throw new ApiError(res.status, errorMessage(res.status, body));
  return body;
}

// ---------------------------------------------------------------------------------------------------
// "My files"

const rowRequests = new Map();
const FINISHED = new Set(['stored', 'failed', 'corrupt']);
let nextCursor = dom.loadMore.dataset.cursor || null;

function rows() {
  return Array.from(dom.filesBody.querySelectorAll('tr[data-file-id]'));
}

function findRow(id) {
  return rows().find((tr) => tr.dataset.fileId === id) ?? null;
}

function updateEmpty() {
  const empty = rows().length === 0;
  dom.filesWrap.hidden = empty;
  dom.emptyState.hidden = !empty;
}

function setCursor(cursor) {
  nextCursor = cursor || null;
  dom.filesFooter.hidden = !nextCursor;
}

function fillTime(node, iso) {
  node.setAttribute('datetime', iso ?? '');
  node.textContent = iso ? formatTime(iso) : '';
}

function fillHash(tr, name, hash) {
  const code = field(tr, name);
  code.textContent = shortHash(hash);
  code.title = hash ?? '';
  code.dataset.hash = hash ?? '';
  field(tr, `${name}-wrap`).hidden = !hash;
  field(tr, `${name}-pending`).hidden = Boolean(hash);
}

/** Writes a file (the REST shape) into a row built from the shared file-row partial. */
function fillRow(tr, file) {
  const name = file.filename;
  const stored = file.status === 'stored';
  tr.dataset.fileId = file.id;
  tr.dataset.status = file.status;
  tr.dataset.created = file.createdAt;
  setText(tr, 'filename', name);
  setOptionalText(tr, 'error', stored ? '' : file.error);
  const size = setText(tr, 'size', formatBytes(file.size));
  size.title = `${file.size} bytes`;
  const badge = setText(tr, 'status', file.status);
  badge.className = `badge status-badge status-${file.status}`;
  fillTime(field(tr, 'created'), file.createdAt);
  fillTime(field(tr, 'stored'), file.storedAt);
  field(tr, 'stored-line').hidden = !file.storedAt;
  fillHash(tr, 'sha256', file.sha256);
  fillHash(tr, 'sha1', file.sha1);
  for (const button of tr.querySelectorAll('[data-action="copy"]')) {
    button.setAttribute(
      'aria-label',
      `Copy the ${button.dataset.hashField === 'sha1' ? 'SHA-1' : 'SHA-256'} of ${name}`,
    );
  }
  const download = tr.querySelector('[data-action="download"]');
  download.href = `/api/v1/files/${encodeURIComponent(file.id)}/content`;
  download.classList.toggle('disabled', !stored);
  download.setAttribute('aria-label', `Download ${name}`);
  if (stored) {
    download.removeAttribute('aria-disabled');
    download.removeAttribute('tabindex');
  } else {
    download.setAttribute('aria-disabled', 'true');
    download.setAttribute('tabindex', '-1');
  }
  const verify = tr.querySelector('[data-action="verify"]');
  if (!verify.dataset.busy) verify.disabled = !(stored || file.status === 'corrupt');
  verify.setAttribute('aria-label', `Verify ${name}`);
  tr.querySelector('[data-action="delete"]').setAttribute('aria-label', `Delete ${name}`);
  tr.querySelector('.file-actions').setAttribute('aria-label', `Actions for ${name}`);
}

function isNewer(a, b) {
  const ca = a.dataset.created ?? '';
  const cb = b.dataset.created ?? '';
  return ca === cb ? a.dataset.fileId > b.dataset.fileId : ca > cb;
}

/** Inserts or updates a row, keeping newest-first order; returns the row (or null if outside the loaded window). */
function upsertRow(file, flash = false) {
  let tr = findRow(file.id);
  const status = tr?.dataset.status;
  if (tr) {
    fillRow(tr, file);
  } else {
    tr = dom.rowTemplate.content.firstElementChild.cloneNode(true);
    fillRow(tr, file);
    const before = rows().find((other) => isNewer(tr, other));
    if (before) dom.filesBody.insertBefore(tr, before);
    else if (!nextCursor) dom.filesBody.append(tr);
    else return null; // older than everything loaded: "Load more" will bring it
  }
  updateEmpty();
  if (flash && status !== file.status) {
    tr.classList.remove('row-flash');
    void tr.offsetWidth;
    tr.classList.add('row-flash');
  }
  return tr;
}

function removeRow(id) {
  findRow(id)?.remove();
  updateEmpty();
}

function setRowStatus(id, status) {
  const tr = findRow(id);
  if (!tr || tr.dataset.status === status) return;
  tr.dataset.status = status;
  const badge = setText(tr, 'status', status);
  badge.className = `badge status-badge status-${status}`;
}

/** Re-reads one file; the latest request per id wins, so a slow answer never overwrites a newer one. */
async function refreshRow(id, flash = false) {
  const seq = (rowRequests.get(id) ?? 0) + 1;
  rowRequests.set(id, seq);
  try {
    const file = await api('GET', `/api/v1/files/${encodeURIComponent(id)}`);
    if (rowRequests.get(id) === seq) upsertRow(file, flash);
  } catch (error) {
    if (error.status === 404 && rowRequests.get(id) === seq) removeRow(id);
  }
}

/**
 * Reloads the loaded window of the list over REST (after a socket (re)connect, or on "Refresh"):
 * updates every row, adds missing ones, drops rows deleted elsewhere.
 */
async function reloadList() {
  const limit = Math.min(100, Math.max(pageSize, rows().length));
  const page = await api('GET', `/api/v1/files?limit=${limit}`);
  const ids = new Set(page.items.map((f) => f.id));
  const last = page.items[page.items.length - 1];
  for (const tr of rows()) {
    if (ids.has(tr.dataset.fileId)) continue;
    const inWindow = !page.nextCursor || !last || (tr.dataset.created ?? '') >= last.createdAt;
    if (inWindow) tr.remove();
  }
  setCursor(page.nextCursor);
  for (const file of page.items) {
    // A list read that raced a completion event must not turn a finished row back into a running one.
    const shown = findRow(file.id)?.dataset.status;
    if (FINISHED.has(shown) && !FINISHED.has(file.status)) continue;
    upsertRow(file);
  }
  updateEmpty();
}

async function loadMore() {
  if (!nextCursor) return;
  const button = dom.loadMore;
  button.disabled = true;
  try {
    const page = await api('GET', `/api/v1/files?limit=${pageSize}&cursor=${encodeURIComponent(nextCursor)}`);
    for (const file of page.items) {
      if (findRow(file.id)) continue;
      const tr = dom.rowTemplate.content.firstElementChild.cloneNode(true);
      fillRow(tr, file);
      dom.filesBody.append(tr);
    }
    setCursor(page.nextCursor);
    updateEmpty();
    announce(`${page.items.length} more files loaded.`);
  } catch (error) {
    toast('error', 'Could not load more files', error.message);
  } finally {
    button.disabled = false;
  }
}

// Copy a hash
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.className = 'visually-hidden';
  area.setAttribute('readonly', '');
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

async function onCopy(button) {
  const name = button.dataset.hashField;
  const hash = field(button.closest('tr'), name)?.dataset.hash;
  if (!hash) return;
  const label = name === 'sha1' ? 'SHA-1' : 'SHA-256';
  const glyph = button.querySelector('i');
  try {
    await copyText(hash);
    glyph.className = 'bi bi-clipboard-check text-success';
    announce(`${label} copied to the clipboard.`);
    toast('info', `${label} copied`, hash);
  } catch {
    glyph.className = 'bi bi-clipboard-x text-danger';
    toast('error', 'Could not copy', `Select the ${label} by hand: ${hash}`);
  }
  window.setTimeout(() => {
    glyph.className = 'bi bi-clipboard';
  }, 2000);
}

async function onVerify(button) {
  const tr = button.closest('tr');
  const id = tr.dataset.fileId;
  const name = field(tr, 'filename').textContent;
  const result = field(tr, 'verify');
  const glyph = button.querySelector('i');
  button.disabled = true;
  button.dataset.busy = '1';
  glyph.className = 'spinner-border spinner-border-sm';
  result.hidden = false;
  result.className = 'small text-body-secondary';
  result.textContent = 'Verifying every segment and the SHA-256…';
  try {
    const { ok, checkedBytes } = await api('POST', `/api/v1/files/${encodeURIComponent(id)}/verify`);
    const when = timeFormat.format(new Date());
    result.className = `small ${ok ? 'text-success' : 'text-danger fw-semibold'}`;
    result.textContent = ok
      ? `Verified OK (${formatBytes(checkedBytes)} checked, ${when})`
      : `Integrity check FAILED after ${formatBytes(checkedBytes)} (${when})`;
    if (ok) toast('success', 'Verified', `${name}: every segment and the SHA-256 check out.`);
    else
      toast(
        'error',
        'Integrity check failed',
        `${name} does not match what was stored; it is now marked corrupt.`,
      );
    if (!ok) await refreshRow(id);
  } catch (error) {
    result.className = 'small text-danger';
    result.textContent = `Could not verify: ${error.message}`;
    toast('error', 'Verify failed', `${name}: ${error.message}`);
    if (error.status === 404) removeRow(id);
  } finally {
    delete button.dataset.busy;
    glyph.className = 'bi bi-shield-check';
    const status = tr.dataset.status;
    button.disabled = !(status === 'stored' || status === 'corrupt');
  }
}

// Delete, behind a confirmation modal
const deleteModal = bs.Modal.getOrCreateInstance(dom.deleteModal);
let pendingDelete = null;
let deletedLast = false;

dom.deleteModal.addEventListener('show.bs.modal', (event) => {
  const tr = event.relatedTarget?.closest('tr');
  if (!tr) {
    event.preventDefault();
    return;
  }
  pendingDelete = tr.dataset.fileId;
  deletedLast = false;
  setText(dom.deleteModal, 'filename', field(tr, 'filename').textContent);
  setText(dom.deleteModal, 'size', field(tr, 'size').textContent);
  setOptionalText(dom.deleteModal, 'error', '');
  dom.confirmDelete.disabled = false;
});

dom.deleteModal.addEventListener('hidden.bs.modal', () => {
  pendingDelete = null;
  if (deletedLast) dom.filesHeading.focus();
});

dom.confirmDelete.addEventListener('click', async () => {
  const id = pendingDelete;
  if (!id) return;
  const name = field(dom.deleteModal, 'filename').textContent;
  dom.confirmDelete.disabled = true;
  try {
    await api('DELETE', `/api/v1/files/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status !== 404) {
      setOptionalText(dom.deleteModal, 'error', error.message);
      dom.confirmDelete.disabled = false;
      return;
    }
  }
  removeRow(id);
  deletedLast = true;
  deleteModal.hide();
  toast('success', 'Deleted', `${name} and its key are gone.`);
  announce(`${name} deleted.`);
});

dom.filesBody.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button || button.disabled) return;
  if (button.dataset.action === 'copy') void onCopy(button);
  if (button.dataset.action === 'verify') void onVerify(button);
});

dom.loadMore.addEventListener('click', () => void loadMore());
dom.refresh.addEventListener('click', async () => {
  dom.refresh.disabled = true;
  try {
    await reloadList();
    announce('File list refreshed.');
  } catch (error) {
    toast('error', 'Could not refresh', error.message);
  } finally {
    dom.refresh.disabled = false;
  }
});

// ---------------------------------------------------------------------------------------------------
// Uploads

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

const queue = [];
const byFileId = new Map();
/** Events that arrived before the upload's 202 told us its file id. */
const early = new Map();
let active = 0;

function isFinal(up) {
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

function createUpload(file) {
  const item = dom.cardTemplate.content.firstElementChild.cloneNode(true);
  const card = item.querySelector('.upload-card');
  setText(card, 'name', file.name);
  field(card, 'name').title = file.name;
  setText(card, 'size', formatBytes(file.size));
  card.setAttribute('aria-label', `Upload of ${file.name}`);
  card
    .querySelector('[data-action="cancel"]')
    .setAttribute('aria-label', `Cancel the upload of ${file.name}`);
  card.querySelector('[data-action="dismiss"]').setAttribute('aria-label', `Dismiss ${file.name}`);
  const up = { file, item, card, state: 'waiting', fileId: null, xhr: null, processPercent: 0, lastEvent: 0 };
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
  announce(`Upload of ${up.file.name} cancelled.`);
}

function addFiles(fileList) {
  const files = Array.from(fileList ?? []);
  if (!files.length) return;
  let accepted = 0;
  for (const file of files) {
    const up = createUpload(file);
    if (file.size > maxFileSize) {
      const text = `${file.name} is ${formatBytes(file.size)}, over the ${maxFileSizeLabel} limit per file. It was not uploaded.`;
      setBar(up, 'transfer', 0, 'not sent', 'bg-danger');
      setBar(up, 'process', 0, '—');
      setState(up, 'rejected', 'Too large');
      setMessage(up, text, 'text-danger');
      toast('error', 'File too large', text);
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
  up.lastEvent = Date.now();
  byFileId.set(accepted.id, up);
  up.card.dataset.fileId = accepted.id;
  setBar(up, 'transfer', 100, 'done', 'bg-success');
  setState(up, 'processing', 'Processing');
  setBar(up, 'process', 0, STAGE_TEXT.queued);
  announce(`${up.file.name} uploaded; it is being hashed and encrypted.`);
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
  toast('error', 'Upload failed', `${up.file.name}: ${message}`);
}

function applyProgress(up, progress) {
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

function completeUpload(up, result) {
  if (isFinal(up)) return;
  up.processPercent = 100;
  setBar(up, 'process', 100, 'stored', 'bg-success');
  setState(up, 'stored', 'Stored');
  setMessage(up, result.sha256 ? `SHA-256 ${shortHash(result.sha256)}` : 'Stored.', 'text-success');
  if (result.sha256) field(up.card, 'message').title = result.sha256;
  toast('success', 'Stored', `${up.file.name} is encrypted and stored.`);
  announce(`${up.file.name} is stored.`);
}

function failProcessing(up, error) {
  if (isFinal(up)) return;
  setBar(up, 'process', up.processPercent, 'failed', 'bg-danger');
  setState(up, 'failed', 'Failed');
  const message = error || 'Processing failed.';
  setMessage(up, message, 'text-danger');
  toast('error', 'Processing failed', `${up.file.name}: ${message}`);
}

/** Brings one upload's card in line with the job state over REST. */
async function reconcile(up) {
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

function remember(fileId, patch) {
  const now = Date.now();
  for (const [id, entry] of early) if (now - entry.at > 120_000) early.delete(id);
  early.set(fileId, { ...early.get(fileId), ...patch, at: now });
}

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

function hasFiles(event) {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

let dragDepth = 0;
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

// ---------------------------------------------------------------------------------------------------
// Live updates

const LIVE_STYLE = {
  connecting: 'text-bg-secondary',
  connected: 'text-bg-success',
  reconnecting: 'text-bg-warning',
  offline: 'text-bg-danger',
};

function setLive(state, text) {
  dom.liveStatus.dataset.state = state;
  dom.liveStatus.className = `badge rounded-pill live-status ${LIVE_STYLE[state]}`;
  setText(dom.liveStatus, 'text', text);
}

/** After every (re)connect: whatever happened while we were not listening is read back over REST. */
async function resync() {
  for (const up of byFileId.values()) void reconcile(up);
  try {
    await reloadList();
  } catch (error) {
    if (error.status !== 401) toast('error', 'Could not refresh the file list', error.message);
  }
}

// Long-polling first, then WebSocket when the network allows it (proxies that block WebSockets still get
// live updates). The gateway admits a handshake from our own pages only (Origin or Fetch Metadata).
const socket = io({ path: '/socket.io', reconnectionDelayMax: 10_000 });
socket.on('connect', () => {
  setLive('connected', 'Live updates on');
  void resync();
});
socket.on('disconnect', (reason) => {
  if (reason === 'io server disconnect') setLive('offline', 'Live updates ended (signed out?)');
  else setLive('reconnecting', 'Reconnecting…');
});
socket.on('connect_error', () => setLive('reconnecting', 'Live updates unavailable, retrying…'));

socket.on('job:progress', (event) => {
  const up = byFileId.get(event.fileId);
  if (up) applyProgress(up, event);
  else {
    remember(event.fileId, { progress: event });
    if (event.stage !== 'queued') setRowStatus(event.fileId, 'processing');
  }
});
socket.on('job:completed', (event) => {
  const up = byFileId.get(event.fileId);
  if (up) completeUpload(up, event);
  else remember(event.fileId, { completed: event });
  void refreshRow(event.fileId, true);
});
socket.on('job:failed', (event) => {
  const up = byFileId.get(event.fileId);
  if (up) failProcessing(up, event.error);
  else remember(event.fileId, { failed: event });
  void refreshRow(event.fileId, true);
});

// Safety net: an upload that has heard nothing for a while (or while the socket is down) re-reads its job.
window.setInterval(() => {
  const now = Date.now();
  for (const up of byFileId.values()) {
    if (!isFinal(up) && (!socket.connected || now - up.lastEvent > STALE_AFTER_MS)) void reconcile(up);
  }
}, 4000);

// First paint came from the server in UTC; show the times in the user's own zone.
for (const node of dom.filesBody.querySelectorAll('time[datetime]')) {
  const iso = node.getAttribute('datetime');
  if (iso) node.textContent = formatTime(iso);
}
for (const tr of rows()) tr.dataset.created = field(tr, 'created').getAttribute('datetime') ?? '';
