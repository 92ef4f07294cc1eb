/** Deterministic object key per file, so a re-run job overwrites instead of duplicating. */
export function objectKeyFor(fileId: string): string {
  return `objects/${fileId}`;
}
