/**
 * Which file types TESS accepts (docs/security.md, content checks). One policy, applied twice: the gateway
 * refuses what the client *says* before storing a byte (the name's extension, the declared content type:
 * 415), and the worker decides on what the bytes *are* (the type sniffed from the content), where a
 * declared-harmless name cannot hide an executable. Framework-free and pure, so both sides and the unit
 * tests use the same code.
 */

/** What the policy is built from (config: ALLOWED_TYPES, BLOCKED_TYPES, BLOCK_ACTIVE_CONTENT, TYPE_MISMATCH). */
export interface TypePolicyConfig {
  /** MIME patterns (`image/*`, `application/pdf`); empty: every type not blocked. */
  allowedTypes: string[];
  /** MIME patterns and `.ext` names that are refused whatever ALLOWED_TYPES says. */
  blockedTypes: string[];
  /** Refuse HTML and SVG that carry script (`<script>`, `on*=` handlers, `javascript:` URLs). */
  blockActiveContent: boolean;
  /** A name or declared type that disagrees with the content: refuse, store with a warning, or ignore. */
  typeMismatch: 'reject' | 'flag' | 'allow';
}

/**
 * Executables and scripts that browsers or operating systems run: PE (exe, dll, scr), ELF, Mach-O, MSI,
 * shell/batch/PowerShell/JavaScript/VBScript. The default of BLOCKED_TYPES.
 */
export const DEFAULT_BLOCKED_TYPES: readonly string[] = [
  'application/x-msdownload',
  'application/vnd.microsoft.portable-executable',
  'application/x-dosexec',
  'application/x-msdos-program',
  'application/x-elf',
  'application/x-executable',
  'application/x-mach-binary',
  'application/x-msi',
  'application/x-sh',
  'text/x-shellscript',
  'application/x-bat',
  'application/x-msbatch',
  'application/x-powershell',
  'application/javascript',
  'text/javascript',
  'application/x-javascript',
  'text/vbscript',
  '.exe',
  '.dll',
  '.msi',
  '.bat',
  '.cmd',
  '.ps1',
  '.sh',
  '.js',
  '.vbs',
  '.scr',
];

/**
 * The content type a name's extension promises, for the extensions whose content is recognisable from its
 * bytes (the mismatch check compares only these; an unknown extension promises nothing).
 */
const EXTENSION_TYPES: Record<string, string> = {
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  zip: 'application/zip',
  gz: 'application/gzip',
  '7z': 'application/x-7z-compressed',
  rar: 'application/x-rar-compressed',
  mp3: 'audio/mpeg',
  mp4: 'video/mp4',
  wav: 'audio/wav',
  exe: 'application/x-msdownload',
  dll: 'application/x-msdownload',
  txt: 'text/plain',
  csv: 'text/csv',
  json: 'application/json',
  html: 'text/html',
  htm: 'text/html',
  svg: 'image/svg+xml',
  xml: 'application/xml',
};

/** Types whose files are containers of others (a .docx is a zip): a zip named .docx is no mismatch. */
const CONTAINER_FAMILIES: Record<string, string[]> = {
  'application/zip': [
    'application/zip',
    'application/x-zip-compressed',
    'application/java-archive',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    'application/vnd.oasis.opendocument.text',
    'application/epub+zip',
  ],
};

/** Declared types that say nothing about the content (a client that did not know). */
const GENERIC_TYPES = new Set(['application/octet-stream', 'binary/octet-stream', 'application/unknown']);

/** Spellings of one type that clients use interchangeably. */
const ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'image/x-png': 'image/png',
  'application/x-pdf': 'application/pdf',
  'application/x-zip-compressed': 'application/zip',
  'application/x-gzip': 'application/gzip',
  'audio/x-wav': 'audio/wav',
  'audio/mp3': 'audio/mpeg',
  'text/xml': 'application/xml',
  'application/vnd.microsoft.portable-executable': 'application/x-msdownload',
  'application/x-dosexec': 'application/x-msdownload',
  'application/x-msdos-program': 'application/x-msdownload',
};

/** A refusal: the rule that refused, in words a user can act on. */
export interface TypeViolation {
  /** `blocked-type`, `blocked-extension`, `not-allowed`, `type-mismatch`, `active-content`. */
  rule: 'blocked-type' | 'blocked-extension' | 'not-allowed' | 'type-mismatch' | 'active-content';
  message: string;
}

/** What the worker learnt about the bytes. */
export interface DetectedContent {
  /** The MIME type from the content (magic bytes, or text inspection). */
  type: string;
  /** True for binary content (a magic-byte format, or bytes that are not text). */
  binary: boolean;
  /** HTML or SVG carrying script. */
  activeContent: boolean;
}

/** The worker's verdict: refuse, or accept (with a warning when the policy flags a mismatch). */
export type ContentVerdict = { ok: false; violation: TypeViolation } | { ok: true; warning: string | null };

const canonical = (type: string): string => {
  const t = type.trim().toLowerCase();
  return ALIASES[t] ?? t;
};

/** The lowercase extension of a name without its dot, or '' (`archive.tar.gz` -> `gz`, `.env` -> ''). */
export function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot > 0 ? filename.slice(dot + 1).toLowerCase() : '';
}

/** `image/*` matches `image/png`; `*` and `*\/*` match everything; otherwise equality (aliases folded). */
export function matchesPattern(type: string, pattern: string): boolean {
  const p = pattern.trim().toLowerCase();
  const t = canonical(type);
  if (p === '*' || p === '*/*') return true;
  if (p.endsWith('/*')) return t.startsWith(p.slice(0, -1));
  return canonical(p) === t;
}

/** A comma-separated list from the environment, trimmed, empty entries dropped. */
export function parseTypeList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean);
}

/** Why a list entry is not a MIME pattern or an extension, or null when it is one. */
export function invalidTypeEntry(entry: string): string | null {
  if (/^\.[a-z0-9_+-]{1,16}$/.test(entry)) return null;
  if (/^(\*|\*\/\*|[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$/.test(entry)) return null;
  return `"${entry}" is neither a MIME pattern (image/*, application/pdf) nor an extension (.exe)`;
}

export class TypePolicy {
  private readonly blockedPatterns: string[];
  private readonly blockedExtensions: Set<string>;

  constructor(readonly config: TypePolicyConfig) {
    this.blockedPatterns = config.blockedTypes.filter((t) => !t.startsWith('.'));
    this.blockedExtensions = new Set(
      config.blockedTypes.filter((t) => t.startsWith('.')).map((t) => t.slice(1)),
    );
  }

  /** The gateway's check, before anything is stored: the name and the declared type only. */
  checkDeclared(filename: string, declaredType: string): TypeViolation | null {
    const ext = extensionOf(filename);
    if (ext && this.blockedExtensions.has(ext)) {
      return {
        rule: 'blocked-extension',
        message: `"${filename}" was refused: files named .${ext} are blocked (BLOCKED_TYPES); nothing was stored.`,
      };
    }
    const declared = canonical(declaredType);
    if (GENERIC_TYPES.has(declared)) return null;
    return this.checkType(declared, `"${filename}" was refused: its declared type`);
  }

  /** The worker's check on the real content (and, for mismatches, what the client said about it). */
  checkContent(filename: string, declaredType: string, detected: DetectedContent): ContentVerdict {
    const declared = this.checkDeclared(filename, declaredType);
    if (declared) return { ok: false, violation: declared };
    const typed = this.checkType(detected.type, `"${filename}" was refused: its content is`);
    if (typed) return { ok: false, violation: typed };
    if (detected.activeContent && this.config.blockActiveContent) {
      return {
        ok: false,
        violation: {
          rule: 'active-content',
          message: `"${filename}" was refused: it is ${detected.type} with script in it (BLOCK_ACTIVE_CONTENT); nothing was stored.`,
        },
      };
    }
    const mismatch = this.mismatch(filename, declaredType, detected);
    if (!mismatch || this.config.typeMismatch === 'allow') return { ok: true, warning: null };
    if (this.config.typeMismatch === 'flag') return { ok: true, warning: mismatch };
    return {
      ok: false,
      violation: {
        rule: 'type-mismatch',
        message: `"${filename}" was refused: ${mismatch} (TYPE_MISMATCH=reject); nothing was stored.`,
      },
    };
  }

  private checkType(type: string, what: string): TypeViolation | null {
    const blocked = this.blockedPatterns.find((p) => matchesPattern(type, p));
    if (blocked) {
      return {
        rule: 'blocked-type',
        message: `${what} ${type}, which is blocked (BLOCKED_TYPES: ${blocked}); nothing was stored.`,
      };
    }
    const { allowedTypes } = this.config;
    if (allowedTypes.length && !allowedTypes.some((p) => matchesPattern(type, p))) {
      return {
        rule: 'not-allowed',
        message: `${what} ${type}, which is not allowed (ALLOWED_TYPES: ${allowedTypes.join(', ')}); nothing was stored.`,
      };
    }
    return null;
  }

  /** How the name or the declared type disagrees with the content, or null when they agree. */
  private mismatch(filename: string, declaredType: string, detected: DetectedContent): string | null {
    const actual = canonical(detected.type);
    const ext = extensionOf(filename);
    const promised = EXTENSION_TYPES[ext];
    if (promised && !this.agrees(promised, actual, detected.binary)) {
      return `the name says .${ext} (${promised}) but the content is ${actual}`;
    }
    const declared = canonical(declaredType);
    if (!GENERIC_TYPES.has(declared) && !this.agrees(declared, actual, detected.binary)) {
      return `the declared type is ${declared} but the content is ${actual}`;
    }
    return null;
  }

  /**
   * Whether a promised type fits the detected one. Text inspection tells text formats apart only roughly
   * (a fragment of HTML reads as plain text), so text content fits any textual promise; binary formats
   * recognised by their magic bytes must match exactly, or be a container of the promised kind (a .docx
   * is a zip). An empty file contradicts nothing.
   */
  private agrees(promised: string, actual: string, binary: boolean): boolean {
    const p = canonical(promised);
    if (p === actual || actual === 'application/x-empty') return true;
    if (CONTAINER_FAMILIES[actual]?.includes(p)) return true;
    return !binary && isTextual(p);
  }
}

/** Types whose content is text: text/*, JSON, XML and their structured-syntax suffixes. */
function isTextual(type: string): boolean {
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type === 'application/xml' ||
    type.endsWith('+json') ||
    type.endsWith('+xml')
  );
}
