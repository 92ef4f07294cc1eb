// What "My files" shows: the current folder (null: the root), the search text, the status filter and the
// order. Every list read builds its query from here, and live events ask it whether a file belongs.

export const view = {
  folderId: null,
  q: '',
  status: '',
  sort: 'createdAt',
  order: 'desc',
};

/** The query string of a list page of the current view (the API's GET /api/v1/files parameters). */
export function listQuery(limit, cursor) {
  const params = new URLSearchParams({ limit: String(limit), folderId: view.folderId ?? 'root' });
  if (view.q) params.set('q', view.q);
  if (view.status) params.set('status', view.status);
  if (view.sort !== 'createdAt' || view.order !== 'desc') {
    params.set('sort', view.sort);
    params.set('order', view.order);
  }
  if (cursor) params.set('cursor', cursor);
  return params.toString();
}

/** Whether the file lives in the folder on screen. */
export function inFolder(file) {
  return (file.folderId ?? null) === view.folderId;
}

/**
 * Whether a file the list has not shown yet may be slotted in by time: only in the plain newest-first
 * view of its folder (a search, filter or other order is read back from the server instead).
 */
export function placesByTime(file) {
  return inFolder(file) && plainView();
}

/** Newest first, no search and no filter: the order live events can keep by themselves. */
export function plainView() {
  return !view.q && !view.status && view.sort === 'createdAt' && view.order === 'desc';
}
