// The dashboard's elements and settings (from the server-rendered page), and the helpers every section
// writes text into the DOM with.

const root = document.getElementById('dashboard');
/** Bootstrap's bundle is a classic script in the layout, loaded before any module runs. */
export const bs = window.bootstrap;
export const csrfToken = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
export const maxFileSize = Number(root.dataset.maxFileSize);
export const maxFileSizeLabel = root.dataset.maxFileSizeLabel ?? '';
export const pageSize = Number(root.dataset.pageSize) || 25;
/** TUS_CHUNK_SIZE: the bytes of one resumable-upload PATCH. */
export const tusChunkSize = Number(root.dataset.tusChunkSize) || 8 * 1024 * 1024;
/** The signed-in user's id: part of an upload's fingerprint, so another account never resumes it. */
export const userId = root.dataset.userId ?? '';
/** SHARE_MAX_EXPIRY in milliseconds: the share dialog offers no longer expiry. */
export const shareMaxExpiryMs = Number(root.dataset.shareMaxExpiryMs) || 30 * 86_400_000;

const $ = (id) => document.getElementById(id);
export const dom = {
  dropZone: $('drop-zone'),
  fileInput: $('file-input'),
  signedOut: $('signed-out'),
  uploads: $('uploads'),
  uploadList: $('upload-list'),
  clearFinished: $('clear-finished'),
  usage: $('usage'),
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
  shareModal: $('share-modal'),
  confirmDelete: $('confirm-delete'),
  rowTemplate: $('file-row-template'),
  cardTemplate: $('upload-card-template'),
};

export function field(scope, name) {
  return scope.querySelector(`[data-field="${name}"]`);
}

export function setText(scope, name, text) {
  const node = field(scope, name);
  if (node) node.textContent = text;
  return node;
}

/** Shows the element with that text, or hides it when the text is empty. */
export function setOptionalText(scope, name, text) {
  const node = setText(scope, name, text ?? '');
  if (node) node.hidden = !text;
}

export function announce(text) {
  dom.announcer.textContent = '';
  window.setTimeout(() => {
    dom.announcer.textContent = text;
  }, 50);
}

export function icon(name) {
  const i = document.createElement('i');
  i.className = `bi bi-${name}`;
  i.setAttribute('aria-hidden', 'true');
  return i;
}
