// Folders in "My files": the breadcrumbs, the folders of the current folder (open, rename, delete, with
// a recursive delete behind a second confirmation), "New folder", renaming a file, and the folder picker
// of the Move dialog. Names reach the DOM through textContent only.
import { api } from './api-client.js';
import { askName, confirmAction } from './dialogs.js';
import { findRow, showList, upsertRow } from './file-table.js';
import { hideModal, showModal } from './modals.js';
import { announce, field, icon, setOptionalText, setText } from './page.js';
import { toast } from './toasts.js';
import { view } from './view.js';

const $ = (id) => document.getElementById(id);
/** The path from the root to the current folder, as the API's breadcrumbs ({id, name}). */
let path = [];

async function allChildren(parentId) {
  const folders = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ parentId: parentId ?? 'root', limit: '100' });
    if (cursor) query.set('cursor', cursor);
    const page = await api('GET', `/api/v1/folders?${query}`);
    folders.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return folders;
}

function renderBreadcrumbs() {
  const list = $('breadcrumbs');
  list.replaceChildren();
  const crumbs = [{ id: null, name: 'My files' }, ...path];
  crumbs.forEach((crumb, i) => {
    const li = document.createElement('li');
    li.className = 'breadcrumb-item';
    const last = i === crumbs.length - 1;
    if (last) {
      li.classList.add('active');
      li.setAttribute('aria-current', 'page');
    }
    const a = document.createElement('a');
    a.href = '#';
    a.dataset.folderId = crumb.id ?? '';
    a.textContent = crumb.name;
    li.append(a);
    list.append(li);
  });
}

function button(action, className, label, ...content) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.dataset.action = action;
  b.append(...content);
  b.setAttribute('aria-label', label);
  return b;
}

function folderItem(folder) {
  const li = document.createElement('li');
  li.className = 'list-group-item d-flex align-items-center gap-2';
  li.dataset.folderId = folder.id;
  const name = document.createElement('span');
  name.dataset.field = 'folder-name';
  name.textContent = folder.name;
  li.append(
    button(
      'open-folder',
      'btn btn-link p-0 text-start text-break flex-grow-1 folder-open',
      `Open the folder ${folder.name}`,
      icon('folder-fill'),
      ' ',
      name,
    ),
    button(
      'rename-folder',
      'btn btn-sm btn-outline-secondary',
      `Rename the folder ${folder.name}`,
      icon('pencil'),
    ),
    button(
      'move-folder',
      'btn btn-sm btn-outline-secondary',
      `Move the folder ${folder.name}`,
      icon('folder-symlink'),
    ),
    button(
      'delete-folder',
      'btn btn-sm btn-outline-danger',
      `Delete the folder ${folder.name}`,
      icon('trash'),
    ),
  );
  return li;
}

async function renderFolders() {
  const list = $('folder-list');
  const folders = await allChildren(view.folderId);
  list.replaceChildren(...folders.map(folderItem));
  list.hidden = folders.length === 0;
  setEmptyText();
}

function setEmptyText() {
  const text = field(document.getElementById('empty-state'), 'text');
  if (!text) return;
  if (view.q || view.status) text.textContent = 'No file here matches.';
  else if (view.folderId) text.textContent = 'No files in this folder yet. Files you upload now go here.';
  else text.textContent = 'No files yet. Files you upload are hashed, encrypted and stored here.';
}

/** Opens a folder (null: the root): its breadcrumbs, subfolders and first page of files. */
export async function openFolder(id) {
  try {
    // The target at once, so a New folder or an upload started meanwhile goes where the user is heading.
    view.folderId = id;
    path = id ? (await api('GET', `/api/v1/folders/${encodeURIComponent(id)}`)).path : [];
    renderBreadcrumbs();
    await Promise.all([renderFolders(), showList()]);
    announce(`Opened ${path.length ? path[path.length - 1].name : 'My files'}.`);
  } catch (error) {
    toast('error', 'Could not open the folder', error.message);
    if (error.status === 404 && id) await openFolder(null);
  }
}

/** Re-reads the current folder's subfolders and files (after a search, a filter or another order). */
export function refreshView() {
  setEmptyText();
  return Promise.all([renderFolders(), showList()]);
}

function deleteFolder(li) {
  const id = li.dataset.folderId;
  const name = field(li, 'folder-name').textContent;
  confirmAction({
    title: `Delete the folder "${name}"?`,
    text: 'The folder is removed. If anything is in it, you are asked again before it goes too.',
    label: 'Delete',
    run: async () => {
      try {
        await api('DELETE', `/api/v1/folders/${encodeURIComponent(id)}`);
      } catch (error) {
        if (error.status !== 409) throw error;
        // Not empty: a second, explicit confirmation (once this dialog has closed) deletes everything in it.
        $('confirm-modal').addEventListener(
          'hidden.bs.modal',
          () =>
            confirmAction({
              title: `"${name}" is not empty`,
              text: `${error.message} Every file in it and in its subfolders is deleted for good, with its key.`,
              label: 'Delete everything in it',
              run: async () => {
                const done = await api('DELETE', `/api/v1/folders/${encodeURIComponent(id)}?recursive=true`);
                li.remove();
                toast(
                  'success',
                  'Folder deleted',
                  `${name}: ${done.files} file(s) and ${done.folders} folder(s) removed.`,
                );
              },
            }),
          { once: true },
        );
        return;
      }
      li.remove();
      toast('success', 'Folder deleted', name);
    },
  });
}

function renameFolder(li) {
  const id = li.dataset.folderId;
  const current = field(li, 'folder-name').textContent;
  askName({
    title: `Rename the folder "${current}"`,
    label: 'Rename',
    value: current,
    save: async (name) => {
      const folder = await api('PATCH', `/api/v1/folders/${encodeURIComponent(id)}`, { name });
      li.replaceWith(folderItem(folder));
      announce(`Folder renamed to ${folder.name}.`);
    },
  });
}

/** The Move dialog for a folder: into the top level, a folder on the path, or a sibling. */
async function moveFolder(li) {
  const id = li.dataset.folderId;
  const name = field(li, 'folder-name').textContent;
  const modalEl = $('move-modal');
  const select = $('move-target');
  setText(modalEl, 'count', `the folder ${name}`);
  setOptionalText(modalEl, 'error', '');
  select.replaceChildren();
  for (const target of await moveTargets()) {
    if (target.id === id || (target.id ?? null) === view.folderId) continue;
    const option = document.createElement('option');
    option.value = target.id ?? '';
    option.textContent = target.name;
    select.append(option);
  }
  $('move-form').onsubmit = async (event) => {
    event.preventDefault();
    try {
      await api('PATCH', `/api/v1/folders/${encodeURIComponent(id)}`, { parentId: select.value || null });
      li.remove();
      hideModal(modalEl);
      toast('success', 'Moved', `The folder ${name} was moved.`);
    } catch (error) {
      setOptionalText(modalEl, 'error', error.message);
    }
  };
  showModal(modalEl);
}

/** The rename dialog of one file row. */
export function renameFile(tr) {
  const id = tr.dataset.fileId;
  const current = field(tr, 'filename').textContent;
  askName({
    title: `Rename "${current}"`,
    label: 'Rename',
    value: current,
    save: async (filename) => {
      const file = await api('PATCH', `/api/v1/files/${encodeURIComponent(id)}`, { filename });
      if (findRow(id)) upsertRow(file);
      toast('success', 'Renamed', `${current} is now ${file.filename}.`);
    },
  });
}

/** Folders a selection can move to: the root, the folders on the path, the current folder's subfolders. */
export async function moveTargets() {
  const here = await allChildren(view.folderId);
  const targets = [{ id: null, name: 'My files (top level)' }];
  for (const [i, crumb] of path.entries())
    targets.push({ id: crumb.id, name: `${'› '.repeat(i + 1)}${crumb.name}` });
  for (const folder of here)
    targets.push({ id: folder.id, name: `${'› '.repeat(path.length + 1)}${folder.name}` });
  return targets;
}

export function initFolders() {
  $('breadcrumbs').addEventListener('click', (event) => {
    const a = event.target.closest('a[data-folder-id]');
    if (!a) return;
    event.preventDefault();
    void openFolder(a.dataset.folderId || null);
  });
  $('folder-list').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const li = button.closest('li[data-folder-id]');
    if (button.dataset.action === 'open-folder') void openFolder(li.dataset.folderId);
    if (button.dataset.action === 'rename-folder') renameFolder(li);
    if (button.dataset.action === 'move-folder')
      void moveFolder(li).catch((error) => toast('error', 'Could not list the folders', error.message));
    if (button.dataset.action === 'delete-folder') deleteFolder(li);
  });
  $('new-folder').addEventListener('click', () =>
    askName({
      title: 'New folder',
      label: 'Create',
      save: async (name) => {
        const folder = await api('POST', '/api/v1/folders', { name, parentId: view.folderId });
        await renderFolders();
        announce(`Folder ${folder.name} created.`);
      },
    }),
  );
  void renderFolders();
}
