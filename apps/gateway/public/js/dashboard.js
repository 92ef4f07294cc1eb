// TESS dashboard (/home): uploads with two progress phases, live job events over Socket.IO and the
// "My files" list. Served from /static/js under a CSP of script-src 'self': no inline code and no build
// step, the browser loads the modules of ./dashboard/ itself; every string from the server or the user
// reaches the DOM through textContent or an attribute, never HTML. Bootstrap's bundle (window.bootstrap)
// is a classic script of the layout, so it has run before any module is evaluated.
import { initBulk } from './dashboard/bulk.js';
import { initFileTable } from './dashboard/file-table.js';
import { initFolders } from './dashboard/folders.js';
import { initLiveUpdates } from './dashboard/live-updates.js';
import { watchModals } from './dashboard/modals.js';
import { initShares } from './dashboard/shares.js';
import { initUploads } from './dashboard/uploads.js';
import { initUsage } from './dashboard/usage.js';
import { initVersions } from './dashboard/versions.js';

watchModals();
initUsage();
initFileTable();
initFolders();
initBulk();
initShares();
initUploads();
initVersions();
initLiveUpdates();
