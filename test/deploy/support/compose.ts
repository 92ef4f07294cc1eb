import { isObj } from './manifests.js';

/** Env files and Compose's `${VAR}` interpolation and `environment:` forms. */

/** NAME=value lines of an env file; with `includeCommented`, also `#NAME=value` (documented options). */
export function parseEnvFile(text: string, includeCommented = false): Map<string, string> {
  const entries = new Map<string, string>();
  const pattern = includeCommented ? /^#?([A-Z][A-Z0-9_]*)=(.*)$/ : /^([A-Z][A-Z0-9_]*)=(.*)$/;
  for (const line of text.split('\n')) {
    const m = pattern.exec(line.trim());
    if (m) entries.set(m[1]!, m[2]!);
  }
  return entries;
}

/**
 * Compose-style interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$.
 * Throws like Compose does when a required variable is missing.
 */
export function interpolate(text: string, vars: Map<string, string> | Record<string, string>): string {
  const get = (name: string) => (vars instanceof Map ? vars.get(name) : vars[name]);
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (match, name, colon, op, arg) => {
      if (match === '$$') return '$';
      const value = get(name);
      const missing = colon ? value === undefined || value === '' : value === undefined;
      if (!op) return value ?? '';
      if (op === '-') return missing ? arg : value!;
      if (missing) throw new Error(`required variable ${name} is missing: ${arg}`);
      return value!;
    },
  );
}

/** Every ${VAR...} reference in a text. */
export function interpolationNames(text: string): Set<string> {
  return new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
}

/** Applies `interpolate` to every string inside a parsed document. */
export function interpolateDeep(value: unknown, vars: Map<string, string> | Record<string, string>): unknown {
  if (typeof value === 'string') return interpolate(value, vars);
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, vars));
  if (isObj(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, vars)]));
  return value;
}

/** Compose `environment:` in either form (mapping or list of NAME=value), values as strings. */
export function composeEnvironment(value: unknown): Record<string, string> {
  if (Array.isArray(value)) {
    return Object.fromEntries(
      value.map((entry) => {
        const text = String(entry);
        const at = text.indexOf('=');
        return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + 1)];
      }),
    );
  }
  if (isObj(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? '' : String(v)]));
  return {};
}
