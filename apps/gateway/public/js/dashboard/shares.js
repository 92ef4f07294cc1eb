// The Share dialog of "My files": create a link to one stored file (expiry, max downloads, password,
// note), show it once with a copy button, and list the file's links with Revoke. Everything from the
// server reaches the DOM through textContent or attributes.
import { api } from './api-client.js';
import { copyText } from './clipboard.js';
import { formatTime } from './format.js';
import { announce, bs, dom, field, icon, setOptionalText, setText, shareMaxExpiryMs } from './page.js';
import { toast } from './toasts.js';

const STATE_LABELS = {
  active: ['Active', 'text-bg-success'],
  expired: ['Expired', 'text-bg-secondary'],
  exhausted: ['Used up', 'text-bg-secondary'],
  revoked: ['Revoked', 'text-bg-secondary'],
};
const DURATIONS = { '1h': 3_600_000, '1d': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };

let fileId = null;
const modal = () => dom.shareModal;
const form = () => modal().querySelector('#share-form');

function linkItem(share) {
  const li = document.createElement('li');
  li.className = 'list-group-item d-flex flex-wrap align-items-center gap-2';
  li.dataset.shareId = share.id;
  li.dataset.state = share.state;
  const [label, badgeClass] = STATE_LABELS[share.state] ?? [share.state, 'text-bg-secondary'];
  const badge = document.createElement('span');
  badge.className = `badge ${badgeClass}`;
  badge.textContent = label;
  const text = document.createElement('span');
  text.className = 'small flex-grow-1';
  const limit = share.maxDownloads === null ? 'unlimited' : `of ${share.maxDownloads}`;
  const parts = [
    `${share.downloads} download${share.downloads === 1 ? '' : 's'} ${limit}`,
    share.state === 'active'
      ? `expires ${formatTime(share.expiresAt)}`
      : `created ${formatTime(share.createdAt)}`,
  ];
  if (share.note) parts.push(share.note);
  text.textContent = parts.join(' · ');
  li.append(badge);
  if (share.hasPassword) {
    const lock = icon('lock');
    lock.title = 'Password protected';
    li.append(lock);
  }
  li.append(text);
  if (share.state === 'active') {
    const revoke = document.createElement('button');
    revoke.type = 'button';
    revoke.className = 'btn btn-sm btn-outline-danger';
    revoke.dataset.action = 'revoke';
    revoke.append(icon('x-circle'), ' Revoke');
    revoke.setAttribute('aria-label', `Revoke the link created ${formatTime(share.createdAt)}`);
    li.append(revoke);
  }
  return li;
}

async function loadLinks() {
  const id = fileId;
  const list = modal().querySelector('#share-list');
  try {
    const { items } = await api('GET', `/api/v1/files/${encodeURIComponent(id)}/shares`);
    if (id !== fileId) return;
    list.replaceChildren(...items.map(linkItem));
    field(modal(), 'no-links').hidden = items.length > 0;
  } catch (error) {
    setOptionalText(modal(), 'error', `Could not load the links: ${error.message}`);
  }
}

function requestBody() {
  const f = form();
  const body = { expiresIn: f.elements.expiresIn.value };
  const max = f.elements.maxDownloads.value.trim();
  if (max) body.maxDownloads = Number(max);
  if (f.elements.password.value) body.password = f.elements.password.value;
  const note = f.elements.note.value.trim();
  if (note) body.note = note;
  return body;
}

async function onCreate(event) {
  event.preventDefault();
  const button = modal().querySelector('#share-create');
  button.disabled = true;
  setOptionalText(modal(), 'error', '');
  try {
    const share = await api('POST', `/api/v1/files/${encodeURIComponent(fileId)}/shares`, requestBody());
    modal().querySelector('#share-url').value = share.url;
    field(modal(), 'created').hidden = false;
    form().elements.password.value = '';
    modal().querySelector('#share-url').select();
    announce('Share link created. Copy it now: it is shown only once.');
    await loadLinks();
  } catch (error) {
    setOptionalText(modal(), 'error', error.message);
  } finally {
    button.disabled = false;
  }
}

async function onCopy() {
  const url = modal().querySelector('#share-url').value;
  try {
    await copyText(url);
    toast('info', 'Link copied', url);
    announce('Link copied to the clipboard.');
  } catch {
    toast('error', 'Could not copy', 'Select the link by hand and copy it.');
  }
}

async function onRevoke(button) {
  const li = button.closest('li[data-share-id]');
  button.disabled = true;
  try {
    await api('DELETE', `/api/v1/shares/${encodeURIComponent(li.dataset.shareId)}`);
    toast('success', 'Link revoked', 'It answers "revoked" from now on.');
    announce('Link revoked.');
  } catch (error) {
    if (error.status !== 404) {
      setOptionalText(modal(), 'error', error.message);
      button.disabled = false;
      return;
    }
  }
  await loadLinks();
}

/** Binds the Share buttons of the rows and the dialog. */
export function initShares() {
  const dialog = bs.Modal.getOrCreateInstance(modal());
  for (const option of form().elements.expiresIn.options) {
    if (DURATIONS[option.value] > shareMaxExpiryMs) option.remove();
  }
  dom.filesBody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action="share"]');
    if (!button || button.disabled) return;
    const tr = button.closest('tr');
    fileId = tr.dataset.fileId;
    setText(modal(), 'filename', field(tr, 'filename').textContent);
    setOptionalText(modal(), 'error', '');
    field(modal(), 'created').hidden = true;
    modal().querySelector('#share-url').value = '';
    form().reset();
    modal().querySelector('#share-list').replaceChildren();
    field(modal(), 'no-links').hidden = false;
    dialog.show(button);
    void loadLinks();
  });
  form().addEventListener('submit', (event) => void onCreate(event));
  modal()
    .querySelector('#share-copy')
    .addEventListener('click', () => void onCopy());
  modal()
    .querySelector('#share-list')
    .addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action="revoke"]');
      if (button && !button.disabled) void onRevoke(button);
    });
  modal().addEventListener('hidden.bs.modal', () => {
    fileId = null;
    modal().querySelector('#share-url').value = '';
  });
}
