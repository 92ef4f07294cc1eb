// Live updates: the Socket.IO client (its ESM build, served by the gateway) and the job events it delivers,
// with REST as the fallback whenever an event may have been missed.
import { io } from '/assets/socket.io/socket.io.esm.min.js';
import { api } from './api-client.js';
import { hasRow, refreshRow, reloadList, setRowStatus } from './file-table.js';
import { setLive } from './live-status.js';
import { isSignedOut, onSignedOut } from './session.js';
import { toast } from './toasts.js';
import {
  applyProgress,
  byFileId,
  completeUpload,
  failProcessing,
  isFinal,
  reconcile,
  remember,
} from './uploads.js';
import { refreshVersionsOf } from './versions.js';

/** Without an event for this long, an upload's job state is re-read over REST. */
const STALE_AFTER_MS = 8000;

/** After every (re)connect: whatever happened while we were not listening is read back over REST. */
async function resync() {
  for (const up of byFileId.values()) void reconcile(up);
  try {
    await reloadList();
  } catch (error) {
    if (error.status !== 401) toast('error', 'Could not refresh the file list', error.message);
  }
}

let lastSessionCheck = 0;

/**
 * Whether the session still holds, asked over REST when the socket says it may not: a 401 ends the page's
 * session (api-client), anything else leaves it be. At most every few seconds while the socket retries.
 */
async function sessionHolds(force) {
  const now = Date.now();
  if (!force && now - lastSessionCheck < 5000) return true;
  lastSessionCheck = now;
  try {
    await api('GET', '/api/v1/usage');
    return true;
  } catch (error) {
    return error.status !== 401;
  }
}

/** Connects the socket; every (re)connect reads back over REST what may have been missed. */
export function initLiveUpdates() {
  // Long-polling first, then WebSocket when the network allows it (proxies that block WebSockets still get
  // live updates). The gateway admits a handshake from our own pages only (Origin or Fetch Metadata).
  const socket = io({ path: '/socket.io', reconnectionDelayMax: 10_000 });
  socket.on('connect', () => {
    setLive('connected', 'Live updates on');
    void resync();
  });
  onSignedOut(() => socket.disconnect());
  // Logging out from this very page ends its socket too; that needs no check and no banner.
  let loggingOut = false;
  document.addEventListener('submit', (event) => {
    if (new URL(event.target.action, window.location.href).pathname === '/logout') loggingOut = true;
  });
  socket.on('disconnect', async (reason) => {
    if (isSignedOut() || loggingOut) return;
    if (reason !== 'io server disconnect') {
      setLive('reconnecting', 'Reconnecting…');
      return;
    }
    // The server ends a socket when its session ends (logout elsewhere, a timeout); REST says whether it did.
    setLive('offline', 'Live updates ended');
    if (await sessionHolds(true)) socket.connect();
  });
  socket.on('connect_error', () => {
    if (isSignedOut()) return;
    setLive('reconnecting', 'Live updates unavailable, retrying…');
    void sessionHolds(false);
  });

  // A file accepted from another tab or client: listed at once, while it is still queued.
  socket.on('file:created', (event) => {
    if (!hasRow(event.fileId)) void refreshRow(event.fileId, true);
  });

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
    // A new version: the upload row is gone, its file's row (and versions panel) show the new version.
    if (event.versionOf) {
      void refreshRow(event.versionOf, true);
      void refreshVersionsOf(event.versionOf);
    } else void refreshRow(event.fileId, true);
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
}
