// Sizes, times and hashes as the dashboard shows them.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** The same rendering as the server's formatBytes helper. */
export function formatBytes(bytes) {
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : timeFormat.format(date);
}

export function shortHash(hash) {
  return hash ? `${hash.slice(0, 12)}…` : '';
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const STEPS = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 7],
  ['week', 4.35],
  ['month', 12],
  ['year', Infinity],
];

/** "5 minutes ago", "yesterday", "last week": how long ago `iso` was. */
export function formatAgo(iso) {
  let value = (new Date(iso).getTime() - Date.now()) / 1000;
  if (Number.isNaN(value)) return '';
  for (const [unit, size] of STEPS) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return '';
}

/** What a row and a card say of a file with the same content as another of yours. */
export function duplicateText(twin) {
  return `Identical to ${twin.filename}, uploaded ${formatAgo(twin.createdAt)}`;
}

/** "8 s", "3 min 20 s", "1 h 5 min": a time left, rounded up to what a reader needs. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const minutes = Math.round((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${minutes ? ` ${minutes} min` : ''}`;
}
