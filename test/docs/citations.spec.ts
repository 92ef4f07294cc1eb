import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/paths.js';

/**
 * The documents code and tests cite are in the repository and hold what is cited: every `docs/...` path
 * exists, every "docs/security.md item N" is a row of that checklist, Markdown links between the docs
 * resolve, and nothing points at design notes kept outside the tree.
 */

const SELF = relative(ROOT, fileURLToPath(import.meta.url));
const ROOTS = ['apps', 'libs', 'scripts', 'test', 'bench', 'deploy', 'k8s', 'docs'];
const TOP_FILES = ['README.md', 'Dockerfile', 'docker-compose.yml'];
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage']);
const TEXT = /\.(ts|js|mjs|cjs|json|md|hbs|css|ya?ml|sh)$|Dockerfile$/;

function walk(dir: string, out: string[]): void {
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) walk(path, out);
    } else if (TEXT.test(entry.name) && !entry.name.includes('.min.')) out.push(path);
  }
}

const files = (() => {
  const out = TOP_FILES.filter((f) => existsSync(join(ROOT, f)));
  for (const dir of ROOTS) if (existsSync(join(ROOT, dir))) walk(dir, out);
  return out
    .filter((f) => f !== SELF)
    .map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));
})();

function matches(pattern: RegExp): Array<{ path: string; match: RegExpExecArray }> {
  return files.flatMap(({ path, text }) => [...text.matchAll(pattern)].map((match) => ({ path, match })));
}

const checklistRows = new Set(
  [...readFileSync(join(ROOT, 'docs/security.md'), 'utf8').matchAll(/^\| (\d+) \|/gm)].map((m) =>
    Number(m[1]),
  ),
);

describe('citations of the docs', () => {
  it('cite no design notes outside the repository', () => {
    const outside = matches(
      /\b(?:DESIGN|SECURITY|STACK|STYLE|ORIGINAL-DESIGN)\.md\b|\/work\/shared|\.\.\/shared\//g,
    );
    expect(outside.map(({ path, match }) => `${path}: ${match[0]}`)).toEqual([]);
  });

  it('name docs/ files that exist', () => {
    const cited = matches(/\bdocs\/[\w./-]+\.(?:md|svg|png)\b/g).map(({ path, match }) => ({
      path,
      target: match[0],
    }));
    expect(cited.length).toBeGreaterThan(0);
    expect(cited.filter(({ target }) => !existsSync(join(ROOT, target)))).toEqual([]);
  });

  it('cite security checklist items that are rows of docs/security.md', () => {
    const cited = matches(/docs\/security\.md items? (\d+)(?:\s*-\s*(\d+))?/g).flatMap(({ path, match }) => {
      const first = Number(match[1]);
      const last = Number(match[2] ?? match[1]);
      return Array.from({ length: last - first + 1 }, (_, i) => ({ path, item: first + i }));
    });
    expect(cited.length).toBeGreaterThan(0);
    expect(cited.filter(({ item }) => !checklistRows.has(item))).toEqual([]);
  });

  it('link Markdown files to files that exist', () => {
    const links = files
      .filter(({ path }) => path.endsWith('.md'))
      .flatMap(({ path, text }) =>
        [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
          .map((m) => m[1]!)
          .filter((target) => !/^[a-z]+:/i.test(target))
          .map((target) => ({ path, target: join(dirname(path), target) })),
      );
    expect(links.filter(({ target }) => !existsSync(join(ROOT, target)))).toEqual([]);
  });
});
