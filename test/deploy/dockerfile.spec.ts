import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_ENV, GATEWAY_NODE_ARGS, WORKER_ENV } from '../../scripts/runtime-env.mjs';
import { ROOT } from '../support/paths.js';
import {
  effectiveInstruction,
  execForm,
  isPinnedImage,
  parseDockerfile,
  stageChain,
  stageEnv,
} from './support/dockerfile.js';

/**
 * The Dockerfile, checked without a Docker engine: pinned base, both targets, the build steps, a
 * non-root user, HEALTHCHECKs (whose Node one-liners are run here against a local server), the runtime
 * layout the gateway needs, and a .dockerignore that keeps secrets and build output out of the context.
 */

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(text);
const targets = ['gateway', 'crypto-worker'] as const;
const copies = (stage: string) =>
  stageChain(dockerfile, stage).flatMap((s) =>
    s.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args),
  );

describe('Dockerfile', () => {
  it('builds from one Node 24 base image pinned by version and digest, the release package.json pins', () => {
    const base = dockerfile.args.get('NODE_IMAGE')!;
    const pinnedNode = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies.node;
    expect(pinnedNode).toMatch(/^24\.\d+\.\d+$/);
    expect(base).toMatch(
      new RegExp(`^node:${pinnedNode.replaceAll('.', '\\.')}-bookworm-slim@sha256:[0-9a-f]{64}$`),
    );
    expect(isPinnedImage(base)).toBe(true);
    const stageNames = new Set(dockerfile.stages.map((s) => s.name));
    for (const stage of dockerfile.stages) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's literal build-argument reference
      expect(stage.from === '${NODE_IMAGE}' || stageNames.has(stage.from), `FROM ${stage.from}`).toBe(true);
    }
  });

  it('builds with the classic builder too: no BuildKit-only RUN --mount, no unpinned syntax frontend', () => {
    expect(text).not.toMatch(/^#\s*syntax=/m);
    expect(text).not.toMatch(/RUN\s+--mount/);
  });

  it('has both targets, each a runtime image (not the build stage)', () => {
    for (const target of targets) {
      const chain = stageChain(dockerfile, target).map((s) => s.name);
      expect(chain, target).toContain('runtime');
      expect(chain, target).not.toContain('build');
    }
  });

  it('build stage: npm ci, npm run build, npm prune --omit=dev, from the lockfile', () => {
    const runs = stageChain(dockerfile, 'build')
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toMatch(/npm run build\b/);
    expect(runs).toMatch(/npm prune --omit=dev\b/);
    expect(copies('build').join('\n')).toContain('package-lock.json');
  });

  it('every file the build copies from the context exists', () => {
    for (const copy of copies('build')) {
      const parts = copy.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
  });

  it.each(targets)('%s: runs as a numeric non-root user with production settings', (target) => {
    const user = effectiveInstruction(dockerfile, target, 'USER')!;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBe(10001);
    const env = stageEnv(dockerfile, target);
    expect(env.NODE_ENV).toBe('production');
    expect(env.HOST).toBe('0.0.0.0');
  });

  it.each(targets)(
    '%s: carries dist, production node_modules and package.json (for the #common import map)',
    (target) => {
      const copied = copies(target).join('\n');
      for (const path of ['/app/dist', '/app/node_modules', '/app/package.json'])
        expect(copied).toContain(path);
    },
  );

  it('gateway: its views and static files sit next to dist, where it looks for them', () => {
    const copied = copies('gateway').join('\n');
    expect(copied).toMatch(/apps\/gateway\/views\s+\.\/apps\/gateway\/views/);
    expect(copied).toMatch(/apps\/gateway\/public\s+\.\/apps\/gateway\/public/);
    expect(existsSync(join(ROOT, 'apps', 'gateway', 'views'))).toBe(true);
    expect(existsSync(join(ROOT, 'apps', 'gateway', 'public'))).toBe(true);
  });

  it('runs each process with the runtime environment npm start and the benchmark use (scripts/runtime-env.mjs)', () => {
    for (const [target, wanted] of [
      ['crypto-worker', WORKER_ENV],
      ['gateway', GATEWAY_ENV],
    ] as const) {
      const env = stageEnv(dockerfile, target);
      for (const [name, value] of Object.entries(wanted)) expect(env[name], `${target} ${name}`).toBe(value);
    }
    expect(WORKER_ENV.GLIBC_TUNABLES).toContain('glibc.malloc.mmap_threshold=33554432');
    // The worker's malloc settings keep freed memory: the gateway must not inherit them.
    expect(stageEnv(dockerfile, 'gateway').GLIBC_TUNABLES).not.toContain('trim_threshold');
  });

  it.each([
    ['gateway', GATEWAY_NODE_ARGS, 'dist/apps/gateway/src/main.js', 'apps/gateway/src/main.ts'],
    ['crypto-worker', [], 'dist/apps/crypto-worker/src/main.js', 'apps/crypto-worker/src/main.ts'],
  ])(
    '%s: CMD starts the built entry point of an existing source file, with the runtime node flags',
    (target, flags, entry, source) => {
      expect(execForm(effectiveInstruction(dockerfile, target, 'CMD')!)).toEqual(['node', ...flags, entry]);
      expect(existsSync(join(ROOT, source))).toBe(true);
    },
  );

  it.each([
    ['gateway', 'PORT'],
    ['crypto-worker', 'WORKER_HEALTH_PORT'],
  ])('%s: HEALTHCHECK asks /healthz on %s with Node (no curl in slim images)', (target, portVar) => {
    const healthcheck = effectiveInstruction(dockerfile, target, 'HEALTHCHECK')!;
    const command = execForm(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim());
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain(`process.env.${portVar}`);
    expect(command[2]).toContain('/healthz');
    expect(healthcheck).toMatch(/--interval=\d+s/);
    expect(healthcheck).toMatch(/--start-period=\d+s/);
  });
});

describe('Dockerfile HEALTHCHECK one-liners, run against a local server', () => {
  let server: Server;
  let port = 0;
  let status = 200;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function probe(target: string, env: Record<string, string>): Promise<number | null> {
    const healthcheck = effectiveInstruction(dockerfile, target, 'HEALTHCHECK')!;
    const [command, ...args] = execForm(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim());
    expect(command).toBe('node');
    return new Promise((resolve) => {
      const child = spawn(process.execPath, args, {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: 'ignore',
      });
      child.on('exit', (code) => resolve(code));
    });
  }

  it.each([
    ['gateway', 'PORT'],
    ['crypto-worker', 'WORKER_HEALTH_PORT'],
  ])(
    '%s: exits 0 when /healthz answers 200, 1 when it does not or nothing listens',
    async (target, portVar) => {
      status = 200;
      expect(await probe(target, { [portVar]: String(port) })).toBe(0);
      status = 503;
      expect(await probe(target, { [portVar]: String(port) })).toBe(1);
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      expect(await probe(target, { [portVar]: String(closedPort) })).toBe(1);
    },
  );
});

describe('.dockerignore', () => {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('keeps build output, dependencies, local state, secrets and git out of the build context', () => {
    for (const pattern of [
      'node_modules',
      'dist',
      '.data',
      '.env',
      'deploy/tess.env',
      '.git',
      '*.key',
      'coverage',
    ]) {
      expect(lines, pattern).toContain(pattern);
    }
  });

  it('does not exclude anything the Dockerfile copies from the context', () => {
    const sources = copies('build')
      .flatMap((c) =>
        c
          .split(/\s+/)
          .filter((p) => !p.startsWith('--'))
          .slice(0, -1),
      )
      .map((s) => s.replace(/^\.\//, ''));
    expect(sources.sort()).toEqual([
      'apps',
      'libs',
      'package-lock.json',
      'package.json',
      'scripts',
      'tsconfig.build.json',
      'tsconfig.json',
    ]);
    // .dockerignore patterns are Go filepath.Match globs relative to the context root; `**` spans folders.
    const toRegExp = (glob: string) =>
      new RegExp(
        `^${glob
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*\/?/g, '@@')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/@@/g, '.*')}(/.*)?$`,
      );
    const excluded = lines.filter((l) => !l.startsWith('!')).map(toRegExp);
    for (const source of sources) {
      expect(excluded.filter((re) => re.test(source)).map(String), source).toEqual([]);
    }
    expect(excluded.some((re) => re.test('node_modules/x/index.js'))).toBe(true);
    expect(excluded.some((re) => re.test('apps/gateway/node_modules/x'))).toBe(true);
  });
});
