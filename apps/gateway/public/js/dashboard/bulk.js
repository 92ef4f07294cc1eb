// Selecting files in "My files" (checkboxes, shift-click for a range, select all shown) and the bulk
// actions on them: delete (one request, a result per file), move (to a folder of the picker) and
// download (one ZIP, streamed by the browser to disk from a form POST). Also the per-row Rename.
import { api } from './api-client.js';
import { confirmAction } from './dialogs.js';
import { onListShown, removeRow, rows, showList } from './file-table.js';
import { moveTargets, refreshView, renameFile } from './folders.js';
import { hideModal, showModal } from './modals.js';
import { announce, dom, field, setOptionalText, setText } from './page.js';
import { toast } from './toasts.js';
import { view } from './view.js';

const $ = (id) => document.getElementById(id);
let lastClicked = null;

function boxes() {
  return rows().map((tr) => tr.querySelector('[data-action="select"]'));
}

function selectedRows() {
  return rows().filter((tr) => tr.querySelector('[data-action="select"]').checked);
}

function updateBar() {
  const selected = selectedRows();
  const bar = $('bulk-bar');
  bar.hidden = selected.length === 0;
  setText(bar, 'count', `${selected.length} selected`);
  const all = boxes();
  const selectAll = $('select-all');
  selectAll.checked = all.length > 0 && selected.length === all.length;
  selectAll.indeterminate = selected.length > 0 && selected.length < all.length;
  for (const tr of rows())
    tr.classList.toggle('table-active', tr.querySelector('[data-action="select"]').checked);
}

function onSelectClick(box, event) {
  const all = boxes();
  if (event.shiftKey && lastClicked && all.includes(lastClicked)) {
    const [a, b] = [all.indexOf(lastClicked), all.indexOf(box)].sort((x, y) => x - y);
    for (const other of all.slice(a, b + 1)) other.checked = box.checked;
  }
  lastClicked = box;
  updateBar();
}

function bulkDelete() {
  const selected = selectedRows();
  const ids = selected.map((tr) => tr.dataset.fileId);
  confirmAction({
    title: `Delete ${ids.length} file${ids.length === 1 ? '' : 's'}?`,
    text: 'The encrypted objects, their keys and their records are removed for good. This cannot be undone.',
    label: `Delete ${ids.length}`,
    run: async () => {
      const answer = await api('POST', '/api/v1/files/bulk-delete', { ids });
      for (const r of answer.results) if (r.status !== 'failed') removeRow(r.id);
      updateBar();
      if (answer.failed) {
        toast(
          'error',
          'Some files were not deleted',
          `${answer.failed} could not be deleted; they are still selected.`,
        );
      } else {
        toast('success', 'Deleted', `${answer.deleted} file${answer.deleted === 1 ? '' : 's'} deleted.`);
      }
      announce(`${answer.deleted} files deleted.`);
    },
  });
}

function bulkDownload() {
  const selected = selectedRows();
  const unready = selected.filter((tr) => tr.dataset.status !== 'stored');
  if (unready.length) {
    toast(
      'error',
      'Not downloadable yet',
      `Only stored files can be downloaded; unselect ${field(unready[0], 'filename').textContent}.`,
    );
    return;
  }
  const form = $('archive-form');
  form.elements.ids.value = selected.map((tr) => tr.dataset.fileId).join(',');
  form.submit();
  announce(`Downloading ${selected.length} files as a ZIP.`);
}

async function bulkMove() {
  const modalEl = $('move-modal');
  const selected = selectedRows();
  const select = $('move-target');
  setText(modalEl, 'count', `${selected.length} file${selected.length === 1 ? '' : 's'}`);
  setOptionalText(modalEl, 'error', '');
  select.replaceChildren();
  try {
    for (const target of await moveTargets()) {
      if ((target.id ?? null) === view.folderId) continue;
      const option = document.createElement('option');
      option.value = target.id ?? '';
      option.textContent = target.name;
      select.append(option);
    }
  } catch (error) {
    toast('error', 'Could not list the folders', error.message);
    return;
  }
  $('move-form').onsubmit = async (event) => {
    event.preventDefault();
    const folderId = select.value || null;
    const problems = [];
    for (const tr of selected) {
      try {
        await api('PATCH', `/api/v1/files/${encodeURIComponent(tr.dataset.fileId)}`, { folderId });
        removeRow(tr.dataset.fileId);
      } catch (error) {
        problems.push(`${field(tr, 'filename').textContent}: ${error.message}`);
      }
    }
    updateBar();
    if (problems.length) setOptionalText(modalEl, 'error', problems.join(' '));
    else {
      hideModal(modalEl);
      toast('success', 'Moved', `${selected.length} file${selected.length === 1 ? '' : 's'} moved.`);
    }
  };
  showModal(modalEl);
}

function bindSorting() {
  for (const button of document.querySelectorAll('#files-table .sort-btn')) {
    button.addEventListener('click', () => {
      const sort = button.dataset.sort;
      view.order =
        view.sort === sort ? (view.order === 'asc' ? 'desc' : 'asc') : sort === 'name' ? 'asc' : 'desc';
      view.sort = sort;
      for (const th of document.querySelectorAll('#files-table th[data-sort]')) {
        const on = th.dataset.sort === view.sort;
        th.setAttribute('aria-sort', on ? (view.order === 'asc' ? 'ascending' : 'descending') : 'none');
        th.querySelector('i').className = on
          ? `bi bi-caret-${view.order === 'asc' ? 'up' : 'down'}-fill`
          : 'bi';
      }
      void showList().catch((error) => toast('error', 'Could not sort', error.message));
    });
  }
}

export function initBulk() {
  dom.filesBody.addEventListener('click', (event) => {
    const box = event.target.closest('[data-action="select"]');
    if (box) onSelectClick(box, event);
    const rename = event.target.closest('button[data-action="rename"]');
    if (rename) renameFile(rename.closest('tr'));
  });
  $('select-all').addEventListener('change', (event) => {
    for (const box of boxes()) box.checked = event.target.checked;
    updateBar();
  });
  $('bulk-delete').addEventListener('click', bulkDelete);
  $('bulk-download').addEventListener('click', bulkDownload);
  $('bulk-move').addEventListener('click', () => void bulkMove());
  onListShown(() => {
    lastClicked = null;
    updateBar();
  });
  // A row removed elsewhere (deleted, moved) leaves the selection.
  new MutationObserver(updateBar).observe(dom.filesBody, { childList: true });
  bindSorting();
  let typing = null;
  $('file-search').addEventListener('input', (event) => {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => {
      view.q = event.target.value.trim();
      void refreshView().catch((error) => toast('error', 'Could not search', error.message));
    }, 250);
  });
  $('status-filter').addEventListener('change', (event) => {
    view.status = event.target.value;
    void refreshView().catch((error) => toast('error', 'Could not filter', error.message));
  });
}
