/**
 * Display names come from the client and are only ever shown back (the storage name is a server
 * UUID). Still, they end up in HTML, JSON and Content-Disposition headers, so they are normalized:
 * Unicode NFC; path components dropped (`../../x`, `C:\x`); control characters (NUL, CR, LF...),
 * bidirectional overrides (U+202E...) and zero-width characters removed; whitespace collapsed;
 * leading dots stripped; at most 255 characters, keeping the extension when it has to cut.
 */
const MAX_LENGTH = 255;
// C0/C1 controls, DEL, bidi embeddings/overrides/isolates, zero-width and BOM characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

export function normalizeFilename(raw: string | undefined | null): string {
  let name = (raw ?? '').normalize('NFC').replace(UNSAFE, '');
  name = name.split(/[\\/]/).pop() ?? '';
  name = name.replace(/\s+/g, ' ').trim().replace(/^\.+/, '').trim();
  if (name.length > MAX_LENGTH) {
    const chars = [...name];
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 16 ? [...name.slice(dot)] : [];
    name = chars.slice(0, MAX_LENGTH - ext.length).join('') + ext.join('');
    while (name.length > MAX_LENGTH) name = [...name].slice(0, -1 - ext.length).join('') + ext.join('');
  }
  return name || 'unnamed';
}

// WHATWG HTML ("multipart/form-data encoding algorithm") has browsers and undici send `"`, CR and LF
// in a part's filename as `%22`, `%0D` and `%0A`, and nothing else percent-encoded: decoding more
// (`%20`, `%2F`) would change names people really chose.
const FORM_DATA_ESCAPES: Record<string, string> = { '%22': '"', '%0D': '\r', '%0A': '\n' };

/**
 * The name a browser or fetch client meant, from a multipart `filename` parameter: exactly the three
 * escapes WHATWG form-data encoding produces are undone (CR and LF are then removed by
 * `normalizeFilename`). A literal `%22` in a name is indistinguishable from an encoded quote on the wire.
 */
export function decodeFormDataFilename(raw: string | undefined | null): string {
  return (raw ?? '').replace(/%22|%0D|%0A/g, (code) => FORM_DATA_ESCAPES[code]!);
}

/** The display name stored for a multipart part's `filename`. */
export function storedFilename(raw: string | undefined | null): string {
  return normalizeFilename(decodeFormDataFilename(raw));
}

const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/** The declared content type when it is a plain `type/subtype`, else application/octet-stream. */
export function normalizeContentType(raw: string | undefined | null): string {
  const value = (raw ?? '').split(';')[0]!.trim().toLowerCase();
  return MIME.test(value) ? value : 'application/octet-stream';
}
