// Toasts: short notices stacked in the corner, built from DOM nodes so no message is parsed as HTML.
import { bs, dom, icon } from './page.js';

const TOAST_STYLE = { success: 'text-bg-success', error: 'text-bg-danger', info: 'text-bg-dark' };
const TOAST_ICON = {
  success: 'check-circle-fill',
  error: 'exclamation-triangle-fill',
  info: 'info-circle-fill',
};

/** A Bootstrap toast; errors stay longer and are announced assertively. */
export function toast(kind, title, text, link) {
  const el = document.createElement('div');
  el.className = `toast border-0 ${TOAST_STYLE[kind]}`;
  el.dataset.kind = kind;
  el.setAttribute('aria-atomic', 'true');
  if (kind === 'error') el.setAttribute('role', 'alert');
  const row = document.createElement('div');
  row.className = 'd-flex';
  const body = document.createElement('div');
  body.className = 'toast-body';
  const heading = document.createElement('strong');
  heading.className = 'd-block';
  heading.append(icon(TOAST_ICON[kind]), ` ${title}`);
  const message = document.createElement('span');
  message.className = 'text-break';
  message.textContent = text;
  body.append(heading, message);
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.className = 'link-light ms-1';
    a.textContent = link.text;
    body.append(a);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn-close btn-close-white me-2 m-auto';
  close.setAttribute('data-bs-dismiss', 'toast');
  close.setAttribute('aria-label', 'Close');
  row.append(body, close);
  el.append(row);
  dom.toasts.append(el);
  // Keep the stack short: the oldest toasts give way.
  const shown = dom.toasts.querySelectorAll('.toast');
  for (let i = 0; i < shown.length - 5; i++) bs.Toast.getOrCreateInstance(shown[i]).hide();
  el.addEventListener('hidden.bs.toast', () => el.remove());
  bs.Toast.getOrCreateInstance(el, { delay: kind === 'error' ? 12000 : 6000 }).show();
}
