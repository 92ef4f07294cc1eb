// Security page: token, passkey and session times in the user's own zone (the server's first paint is
// UTC ISO), the exact time kept as the title.
import { formatTime } from './dashboard/format.js';

for (const node of document.querySelectorAll('main time[datetime]')) {
  node.title = node.textContent;
  node.textContent = formatTime(node.getAttribute('datetime'));
}
