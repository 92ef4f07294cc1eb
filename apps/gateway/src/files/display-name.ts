import { BadRequestException } from '@nestjs/common';

/** What a folder name or a new file name may not hold: refused (400) rather than silently changed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Bidirectional embeddings, overrides and isolates, zero-width characters and the BOM. */
const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;
export const MAX_NAME_LENGTH = 255;

/**
 * A name a user typed for a folder or as a file's new name (docs/security.md item 39 and the rows after
 * it). Unlike an upload's name, which arrives from a file system and is normalized quietly
 * (uploads/filename.ts), a name typed on purpose is refused with a reason: no control characters (NUL,
 * CR, LF...), no bidi overrides or zero-width characters (which disguise `exe.txt` as `txt.exe`), then
 * Unicode NFC and trimmed of spaces, not empty, not `.` or `..`, no `/` or `\`, at most 255 characters.
 */
export function checkedName(raw: unknown, what: 'folder' | 'file'): string {
  if (typeof raw !== 'string') throw new BadRequestException(`The ${what} name must be a string.`);
  const refuse = (why: string) => new BadRequestException(`That ${what} name ${why}.`);
  // Checked before trimming: String.prototype.trim also removes the BOM and line breaks.
  if (CONTROL.test(raw)) throw refuse('cannot contain control characters');
  if (INVISIBLE.test(raw)) throw refuse('cannot contain invisible or text-direction characters');
  const name = raw.normalize('NFC').trim();
  if (!name) throw refuse('is empty');
  if (name === '.' || name === '..') throw refuse('cannot be "." or ".."');
  if (/[\\/]/.test(name)) throw refuse('cannot contain "/" or "\\"');
  if ([...name].length > MAX_NAME_LENGTH) throw refuse(`is longer than ${MAX_NAME_LENGTH} characters`);
  return name;
}
