// "My files": the table rows (server-rendered first, then kept current over REST and live events), the
// copy buttons, "Load more", "Refresh", verify and delete.
import { api } from './api-client.js';
import { copyText } from './clipboard.js';
import { duplicateText, formatAgo, formatBytes, formatTime, shortHash, timeFormat } from './format.js';
import { hideModal } from './modals.js';
import { announce, dom, field, pageSize, setOptionalText, setText } from './page.js';
import { groupedToast, toast } from './toasts.js';
import { refreshUsage } from './usage.js';
import { inFolder, listQuery, placesByTime, plainView } from './view.js';

const rowRequests = new Map();
/** Called with each file written into a row (the upload cards follow what the list learns). */
const rowListeners = [];

export function onRowFilled(fn) {
  rowListeners.push(fn);
}
const FINISHED = new Set(['stored', 'failed', 'corrupt', 'rejected', 'infected']);
let nextCursor = dom.loadMore.dataset.cursor || null;

export function rows() {
  return Array.from(dom.filesBody.querySelectorAll('tr[data-file-id]'));
}

export function findRow(id) {
  return rows().find((tr) => tr.dataset.fileId === id) ?? null;
}

export function hasRow(id) {
  return findRow(id) !== null;
}

/** A loaded, stored (or corrupt) file of that exact name, to offer a new version of it instead of a twin. */
export function storedFileNamed(name) {
  return (
    rows().find(
      (tr) =>
        (tr.dataset.status === 'stored' || tr.dataset.status === 'corrupt') &&
        field(tr, 'filename').textContent === name,
    )?.dataset.fileId ?? null
  );
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
  tr.dataset.folderId = file.folderId ?? '';
  tr.querySelector('[data-action="select"]').setAttribute('aria-label', `Select ${name}`);
  tr.querySelector('[data-action="rename"]').setAttribute('aria-label', `Rename ${name}`);
  setText(tr, 'content-type', file.contentType);
  setText(tr, 'detected-type', file.detectedType ?? '');
  field(tr, 'detected-line').hidden = !file.detectedType;
  setOptionalText(tr, 'type-warning', file.typeWarning);
  const twin = field(tr, 'duplicate');
  twin.hidden = !file.duplicateOf;
  twin.title = file.duplicateOf?.id ?? '';
  setText(tr, 'duplicate-text', file.duplicateOf ? duplicateText(file.duplicateOf) : '');
  for (const fn of rowListeners) fn(file);
  // An unfinished resumable upload (from this or another browser, or the CLI) says how far it got.
  const receiving = file.status === 'receiving' && typeof file.receivedBytes === 'number';
  const size = setText(
    tr,
    'size',
    receiving
      ? `${formatBytes(file.receivedBytes)} of ${formatBytes(file.size)} received`
      : formatBytes(file.size),
  );
  size.title = `${file.size} bytes`;
  const badge = setText(tr, 'status', file.status);
  badge.className = `badge status-badge status-${file.status}`;
  fillTime(field(tr, 'created'), file.createdAt);
  fillTime(field(tr, 'stored'), file.storedAt);
  field(tr, 'stored-line').hidden = !file.storedAt;
  fillHash(tr, 'sha256', file.sha256);
  field(tr, 'client-verified').hidden = !(stored && file.clientVerified === true);
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
  const share = tr.querySelector('[data-action="share"]');
  share.disabled = !stored;
  share.setAttribute('aria-label', `Share ${name}`);
  const version = setText(tr, 'version', `v${file.version}`);
  if (version) {
    version.hidden = !(file.versionCount > 0);
    version.title = `Version ${file.version} of ${file.versionCount}`;
  }
  const versions = tr.querySelector('[data-action="versions"]');
  if (versions) {
    versions.disabled = !(file.versionCount > 0);
    versions.setAttribute('aria-label', `Versions of ${name}`);
  }
  tr.querySelector('[data-action="delete"]').setAttribute('aria-label', `Delete ${name}`);
  tr.querySelector('.file-actions').setAttribute('aria-label', `Actions for ${name}`);
}

function isNewer(a, b) {
  const ca = a.dataset.created ?? '';
  const cb = b.dataset.created ?? '';
  return ca === cb ? a.dataset.fileId > b.dataset.fileId : ca > cb;
}

/** Inserts or updates a row, keeping newest-first order; returns the row (or null if outside the loaded window). */
export function upsertRow(file, flash = false) {
  let tr = findRow(file.id);
  // Moved to another folder (here or in another tab): it leaves this view.
  if (tr && !inFolder(file)) {
    removeRow(file.id);
    return null;
  }
  if (!tr && !placesByTime(file)) return null;
  const status = tr?.dataset.status;
  // A new file, or one that failed, changes what counts against the quota.
  if (status !== file.status) refreshUsage();
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

export function removeRow(id) {
  findRow(id)?.remove();
  updateEmpty();
  refreshUsage();
}

export function setRowStatus(id, status) {
  const tr = findRow(id);
  if (!tr || tr.dataset.status === status) return;
  tr.dataset.status = status;
  const badge = setText(tr, 'status', status);
  badge.className = `badge status-badge status-${status}`;
}

/** Re-reads one file; the latest request per id wins, so a slow answer never overwrites a newer one. */
export async function refreshRow(id, flash = false) {
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
export async function reloadList() {
  // A search, filter or other order: the server's order is the one to keep.
  if (!plainView()) return showList();
  const limit = Math.min(100, Math.max(pageSize, rows().length));
  const page = await api('GET', `/api/v1/files?${listQuery(limit)}`);
  const ids = new Set(page.items.map((f) => f.id));
  const last = page.items[page.items.length - 1];
  for (const tr of rows()) {
    if (ids.has(tr.dataset.fileId)) continue;
    const inWindow = !page.nextCursor || !last || (tr.dataset.created ?? '') >= last.createdAt;
    if (inWindow) tr.remove();
  }
  refreshUsage();
  setCursor(page.nextCursor);
  for (const file of page.items) {
    // A list read that raced a completion event must not turn a finished row back into a running one.
    const shown = findRow(file.id)?.dataset.status;
    if (FINISHED.has(shown) && !FINISHED.has(file.status)) continue;
    upsertRow(file);
  }
  updateEmpty();
}

/** Shows the first page of the current view from scratch (a folder opened, a search, a filter, an order). */
export async function showList() {
  const page = await api('GET', `/api/v1/files?${listQuery(pageSize)}`);
  for (const tr of rows()) tr.remove();
  for (const file of page.items) {
    const tr = dom.rowTemplate.content.firstElementChild.cloneNode(true);
    fillRow(tr, file);
    dom.filesBody.append(tr);
  }
  setCursor(page.nextCursor);
  updateEmpty();
  for (const fn of listListeners) fn();
}

/** Called after the rows were replaced (the selection starts over). */
const listListeners = [];
export function onListShown(fn) {
  listListeners.push(fn);
}

async function loadMore() {
  if (!nextCursor) return;
  const button = dom.loadMore;
  button.disabled = true;
  try {
    const page = await api('GET', `/api/v1/files?${listQuery(pageSize, nextCursor)}`);
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
    // Copies of one hash are one notice; another hash replaces the text.
    groupedToast('info', `copied-${label}`, hash, () => ({ title: `${label} copied`, text: hash }));
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
let pendingDelete = null;
let deletedLast = false;

function bindDeleteModal() {
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
    hideModal(dom.deleteModal);
    toast('success', 'Deleted', `${name} and its key are gone.`);
    announce(`${name} deleted.`);
  });
}

/** Binds the table's controls; the rows themselves are the server's first paint. */
export function initFileTable() {
  bindDeleteModal();
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

  // First paint came from the server in UTC; show the times in the user's own zone.
  for (const node of dom.filesBody.querySelectorAll('time[datetime]')) {
    const iso = node.getAttribute('datetime');
    if (iso) node.textContent = node.closest('[data-field="duplicate"]') ? formatAgo(iso) : formatTime(iso);
  }
  for (const tr of rows()) tr.dataset.created = field(tr, 'created').getAttribute('datetime') ?? '';
}
