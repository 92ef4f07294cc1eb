// The Versions dialog of "My files": a file's versions, newest first (download, restore, delete), its new
// versions still in the pipeline or refused, and "Upload a new version". Everything from the server reaches
// the DOM through textContent or attributes.
import { api } from './api-client.js';
import { refreshRow } from './file-table.js';
import { formatBytes, formatTime, shortHash } from './format.js';
import { announce, bs, dom, field, setOptionalText, setText } from './page.js';
import { toast } from './toasts.js';
import { addVersionUpload } from './uploads.js';

/** The file whose versions the dialog shows (null while it is closed). */
let fileId = null;

function versionRow(file, v) {
  const tr = dom.versionRowTemplate.content.firstElementChild.cloneNode(true);
  tr.dataset.version = String(v.version);
  setText(tr, 'label', `v${v.version}`);
  field(tr, 'current').hidden = !v.current;
  setOptionalText(tr, 'restored', v.restoredFrom ? `restored from v${v.restoredFrom}` : '');
  field(tr, 'corrupt').hidden = v.status !== 'corrupt';
  const size = setText(tr, 'size', formatBytes(v.size));
  size.title = `${v.size} bytes`;
  const created = setText(tr, 'created', formatTime(v.createdAt));
  created.setAttribute('datetime', v.createdAt);
  const hash = setText(tr, 'sha256', shortHash(v.sha256));
  hash.title = v.sha256;
  const download = tr.querySelector('[data-action="download-version"]');
  download.href = `/api/v1/files/${encodeURIComponent(file)}/versions/${v.version}/content`;
  download.setAttribute('aria-label', `Download version ${v.version}`);
  const restore = tr.querySelector('[data-action="restore-version"]');
  restore.hidden = v.current;
  restore.disabled = v.status !== 'stored';
  restore.setAttribute('aria-label', `Restore version ${v.version}`);
  const remove = tr.querySelector('[data-action="delete-version"]');
  remove.hidden = v.current;
  remove.setAttribute('aria-label', `Delete version ${v.version}`);
  return tr;
}

function uploadItem(upload) {
  const li = document.createElement('li');
  li.dataset.uploadId = upload.id;
  li.className = upload.error ? 'text-danger' : 'text-body-secondary';
  const when = formatTime(upload.createdAt);
  li.textContent = upload.error
    ? `A new version uploaded ${when} was not stored (${upload.status}): ${upload.error}`
    : `A new version uploaded ${when} is ${upload.status}…`;
  return li;
}

async function load(id) {
  setOptionalText(dom.versionsModal, 'error', '');
  try {
    const list = await api('GET', `/api/v1/files/${encodeURIComponent(id)}/versions`);
    if (fileId !== id) return;
    dom.versionsBody.replaceChildren(...list.items.map((v) => versionRow(id, v)));
    dom.versionUploads.replaceChildren(...list.uploads.map(uploadItem));
  } catch (error) {
    setOptionalText(dom.versionsModal, 'error', error.message);
  }
}

/** Re-reads the dialog when it shows this file (a new version was stored meanwhile). */
export async function refreshVersionsOf(id) {
  if (fileId === id) await load(id);
}

async function onAction(button) {
  const tr = button.closest('tr[data-version]');
  const id = fileId;
  if (!tr || !id) return;
  const n = tr.dataset.version;
  button.disabled = true;
  try {
    if (button.dataset.action === 'restore-version') {
      const restored = await api('POST', `/api/v1/files/${encodeURIComponent(id)}/versions/${n}/restore`);
      toast(
        'success',
        'Version restored',
        `A copy of v${n} is now the current version (v${restored.version}).`,
      );
      announce(`Version ${n} restored as version ${restored.version}.`);
    } else {
      await api('DELETE', `/api/v1/files/${encodeURIComponent(id)}/versions/${n}`);
      toast('success', 'Version deleted', `v${n} is gone.`);
      announce(`Version ${n} deleted.`);
    }
    await Promise.all([load(id), refreshRow(id, true)]);
  } catch (error) {
    setOptionalText(dom.versionsModal, 'error', error.message);
    button.disabled = false;
  }
}

export function initVersions() {
  bs.Modal.getOrCreateInstance(dom.versionsModal);
  dom.versionsModal.addEventListener('show.bs.modal', (event) => {
    const tr = event.relatedTarget?.closest('tr[data-file-id]');
    if (!tr) {
      event.preventDefault();
      return;
    }
    fileId = tr.dataset.fileId;
    setText(dom.versionsModal, 'filename', field(tr, 'filename').textContent);
    dom.versionsBody.replaceChildren();
    dom.versionUploads.replaceChildren();
    void load(fileId);
  });
  dom.versionsModal.addEventListener('hidden.bs.modal', () => {
    fileId = null;
  });
  dom.versionsBody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (button && !button.disabled) void onAction(button);
  });
  dom.versionInput.addEventListener('change', () => {
    const file = dom.versionInput.files?.[0];
    dom.versionInput.value = '';
    if (!file || !fileId) return;
    addVersionUpload(file, fileId);
    announce(`${file.name} is being uploaded as a new version.`);
    void load(fileId);
  });
}
