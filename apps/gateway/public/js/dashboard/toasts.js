// Toasts: short notices in the bottom-left corner (the table's Actions column and the Refresh button are
// on the right), built from DOM nodes so no message is parsed as HTML. At most MAX_SHOWN stand at once,
// and notices of one kind (say "stored") join one toast while it shows: "5 files stored".
import { bs, dom, icon } from './page.js';

const TOAST_STYLE = { success: 'text-bg-success', error: 'text-bg-danger', info: 'text-bg-dark' };
const TOAST_ICON = {
  success: 'check-circle-fill',
  error: 'exclamation-triangle-fill',
  info: 'info-circle-fill',
};
const MAX_SHOWN = 3;
/** Names a grouped toast spells out before "and N more". */
const NAMED = 3;

/** The toast of each group while it shows: its element and the names it tells about. */
const groups = new Map();

// The page's end can always scroll clear of the toasts: the body keeps their height free below it.
new ResizeObserver(() => {
  const height = dom.toasts.childElementCount ? dom.toasts.getBoundingClientRect().height : 0;
  document.body.style.setProperty('--toasts-height', `${Math.ceil(height)}px`);
}).observe(dom.toasts);

function delayOf(kind) {
  return kind === 'error' ? 12000 : 6000;
}

function build(kind) {
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
  heading.dataset.field = 'title';
  const message = document.createElement('span');
  message.className = 'text-break';
  message.dataset.field = 'text';
  body.append(heading, message);
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn-close btn-close-white me-2 m-auto';
  close.setAttribute('data-bs-dismiss', 'toast');
  close.setAttribute('aria-label', 'Close');
  row.append(body, close);
  el.append(row);
  return el;
}

function fill(el, kind, title, text) {
  const heading = el.querySelector('[data-field="title"]');
  heading.replaceChildren(icon(TOAST_ICON[kind]), ` ${title}`);
  el.querySelector('[data-field="text"]').textContent = text;
}

function show(el, kind) {
  dom.toasts.append(el);
  // Keep the stack short: the oldest toasts give way.
  const shown = Array.from(dom.toasts.querySelectorAll('.toast')).filter((t) => !t.dataset.leaving);
  for (const old of shown.slice(0, Math.max(0, shown.length - MAX_SHOWN))) {
    old.dataset.leaving = '1';
    bs.Toast.getOrCreateInstance(old).hide();
  }
  el.addEventListener('hidden.bs.toast', () => el.remove());
  bs.Toast.getOrCreateInstance(el, { delay: delayOf(kind) }).show();
}

/** A Bootstrap toast; errors stay longer and are announced assertively. */
export function toast(kind, title, text, link) {
  const el = build(kind);
  fill(el, kind, title, text);
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.className = 'link-light ms-1';
    a.textContent = link.text;
    el.querySelector('.toast-body').append(a);
  }
  show(el, kind);
}

function listNames(names) {
  const quoted = names.slice(0, NAMED);
  const more = names.length - quoted.length;
  if (more > 0) return `${quoted.join(', ')} and ${more} more`;
  if (quoted.length === 1) return quoted[0];
  return `${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)}`;
}

/**
 * One toast per group while it shows: a second notice of the group joins it (the count in the title,
 * the names in the text) and restarts its timer instead of stacking another toast.
 * `describe(count, names)` gives `{title, text}`; `names` is the file names so far, oldest first.
 */
export function groupedToast(kind, key, name, describe) {
  let group = groups.get(key);
  if (group && (!group.el.isConnected || group.el.dataset.leaving)) group = undefined;
  if (!group) {
    group = { el: build(kind), names: [] };
    groups.set(key, group);
    group.el.dataset.group = key;
    group.el.addEventListener('hidden.bs.toast', () => {
      if (groups.get(key) === group) groups.delete(key);
    });
    group.names.push(name);
    const { title, text } = describe(1, group.names, listNames);
    fill(group.el, kind, title, text);
    show(group.el, kind);
    return;
  }
  group.names.push(name);
  const { title, text } = describe(group.names.length, group.names, listNames);
  fill(group.el, kind, title, text);
  // show() again restarts Bootstrap's hide timer.
  bs.Toast.getOrCreateInstance(group.el).show();
}
