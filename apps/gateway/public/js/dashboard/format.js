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
