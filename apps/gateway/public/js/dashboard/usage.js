// Storage usage under "My files": bytes and files used (as the quota check counts them, failed files
// excluded), against the quotas when the operator set them. First painted from the page's data, then
// re-read over REST whenever the list gains, loses or changes a file.
import { api } from './api-client.js';
import { formatBytes } from './format.js';
import { dom, field, setText } from './page.js';

/** Several list changes in a burst (a multi-file upload) cost one request. */
const COALESCE_MS = 250;
let timer = null;

function count(n, word) {
  return `${n} ${n === 1 ? word : `${word}s`}`;
}

function render({ bytes, files, quotaBytes, quotaFiles }) {
  const used = quotaBytes ? `${formatBytes(bytes)} of ${formatBytes(quotaBytes)}` : formatBytes(bytes);
  const held = quotaFiles ? `${files} of ${count(quotaFiles, 'file')}` : count(files, 'file');
  setText(dom.usage, 'text', `Storage used: ${used} · ${held}`);
  dom.usage.dataset.bytes = String(bytes);
  dom.usage.dataset.files = String(files);
  const bar = field(dom.usage, 'bar');
  const ratios = [quotaBytes ? bytes / quotaBytes : 0, quotaFiles ? files / quotaFiles : 0];
  bar.hidden = !quotaBytes && !quotaFiles;
  if (bar.hidden) return;
  const percent = Math.min(100, Math.max(...ratios) * 100);
  bar.setAttribute('aria-valuenow', String(Math.floor(percent)));
  bar.setAttribute('aria-valuetext', `${Math.floor(percent)}% of your quota`);
  const inner = bar.firstElementChild;
  inner.style.width = `${percent}%`;
  inner.className = `progress-bar ${percent >= 100 ? 'bg-danger' : percent >= 80 ? 'bg-warning' : ''}`;
}

/** Re-reads the usage soon; a failed read keeps the last figures (a lost session has its own toast). */
export function refreshUsage() {
  if (!dom.usage) return;
  window.clearTimeout(timer);
  timer = window.setTimeout(async () => {
    try {
      render(await api('GET', '/api/v1/usage'));
    } catch {
      // The figures stay as they were; the next list change tries again.
    }
  }, COALESCE_MS);
}

export function initUsage() {
  const { bytes, files, quotaBytes, quotaFiles } = dom.usage.dataset;
  render({
    bytes: Number(bytes),
    files: Number(files),
    quotaBytes: Number(quotaBytes) || undefined,
    quotaFiles: Number(quotaFiles) || undefined,
  });
}
