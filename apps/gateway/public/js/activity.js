// Activity page: times in the user's own zone (the server's first paint is UTC), the zone sent with the
// filter form so its dates are the user's days, and the copy buttons of file ids.
import { copyText } from './dashboard/clipboard.js';
import { formatTime } from './dashboard/format.js';

for (const node of document.querySelectorAll('#activity-table time[datetime]')) {
  node.title = node.textContent;
  node.textContent = formatTime(node.getAttribute('datetime'));
}

const tz = document.querySelector('#activity-filters [data-field="tz"]');
if (tz) tz.value = String(new Date().getTimezoneOffset());

const announcer = document.getElementById('announcer');
document.getElementById('activity-table')?.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-action="copy-id"]');
  if (!button) return;
  const glyph = button.querySelector('i');
  try {
    await copyText(button.dataset.copy);
    glyph.className = 'bi bi-clipboard-check text-success';
    announcer.textContent = 'File id copied to the clipboard.';
  } catch {
    glyph.className = 'bi bi-clipboard-x text-danger';
    announcer.textContent = `Could not copy; the file id is ${button.dataset.copy}.`;
  }
  window.setTimeout(() => {
    glyph.className = 'bi bi-clipboard';
  }, 2000);
});
