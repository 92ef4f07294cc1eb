/** A media type's essence (`type/subtype`, RFC 9110 8.3.1), lowercase; anything else is not one. */
const ESSENCE = /^([!#$%&'*+.^`|~\w-]+)\/([!#$%&'*+.^`|~\w-]+)$/;

/** Types a browser could render or run as a document or script, were `attachment` ever ignored. */
const ACTIVE = new Set([
  'text/html',
  'application/xhtml+xml',
  'image/svg+xml',
  'text/javascript',
  'application/javascript',
  'application/x-javascript',
  'text/ecmascript',
  'application/ecmascript',
  'text/xml',
  'application/xml',
  'text/xsl',
  'multipart/x-mixed-replace',
]);

export const OPAQUE = 'application/octet-stream';

/**
 * The `Content-Type` a download is served with. Downloads are always `attachment` + `nosniff`; on top
 * of that, types a browser could execute (HTML, SVG, JavaScript, XML and any `+xml`) become
 * application/octet-stream, and only a well-formed essence is echoed (parameters dropped), so a
 * client-declared value can neither smuggle a header nor name an active type. `detected` is the type
 * sniffed from the content; it wins over the declared one once uploads record it.
 */
export function servedContentType(declared: string, detected?: string | null): string {
  const essence = (detected ?? declared).split(';', 1)[0]!.trim().toLowerCase();
  const match = ESSENCE.exec(essence);
  if (!match || ACTIVE.has(essence) || match[2]!.endsWith('+xml')) return OPAQUE;
  return essence;
}
