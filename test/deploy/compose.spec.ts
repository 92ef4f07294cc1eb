import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '#common';
import { ROOT } from '../support/paths.js';
import { composeEnvironment, parseEnvFile } from './support/compose.js';
import { isPinnedImage, parseDockerfile } from './support/dockerfile.js';
import { asArray, dig, isObj, type Obj, readYaml } from './support/manifests.js';
import { run, toolWorks } from './support/tools.js';

/**
 * docker-compose.yml, checked without a Docker engine: structure, healthchecks, pinned images, startup
 * order, shared volumes. When a Compose CLI is installed (`docker compose` v2, or Debian's
 * `docker-compose` v1), `config` must also accept the file; neither needs an engine for that.
 */

const composeText = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = readYaml(join(ROOT, 'docker-compose.yml'))[0] as Obj;
const services = compose.services as Record<string, Obj>;
const volumes = compose.volumes as Record<string, unknown>;
const envExample = parseEnvFile(readFileSync(join(ROOT, 'deploy', 'tess.env.example'), 'utf8'));
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));

/** One-shot services: they run to completion and others wait for `service_completed_successfully`. */
const oneShots = new Set(
  Object.values(services).flatMap((s) =>
    Object.entries(isObj(s.depends_on) ? s.depends_on : {})
      .filter(([, d]) => dig(d, 'condition') === 'service_completed_successfully')
      .map(([name]) => name),
  ),
);
const longRunning = Object.keys(services).filter((n) => !oneShots.has(n));
const tessEnv = composeEnvironment(services.gateway!.environment);
const port = (name: string) => Number(tessEnv[name]);

function mounts(service: string): Map<string, string> {
  return new Map(
    asArray<string>(services[service]!.volumes).map((v) => {
      const [source, target] = v.split(':');
      return [target!, source!];
    }),
  );
}

function durationSeconds(value: unknown): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(String(value));
  if (!m) throw new Error(`not a duration: ${String(value)}`);
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1);
}

describe('docker-compose.yml', () => {
  it('runs the whole system: postgres, redis, minio + bucket init, clamav, migrations, gateway, workers, optional localstack', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'clamav',
        'crypto-worker',
        'gateway',
        'localstack',
        'migrate',
        'minio',
        'minio-init',
        'postgres',
        'redis',
      ].sort(),
    );
    expect([...oneShots].sort()).toEqual(['migrate', 'minio-init']);
    for (const name of oneShots) expect(services[name]!.restart, name).toBe('no');
  });

  it.each(longRunning)('%s: has a healthcheck and restarts', (name) => {
    const healthcheck = services[name]!.healthcheck as Obj;
    expect(healthcheck, name).toBeDefined();
    expect(healthcheck.disable).not.toBe(true);
    expect(asArray<string>(healthcheck.test).length).toBeGreaterThan(1);
    expect(services[name]!.restart).toBe('unless-stopped');
  });

  it('every image is pinned to an exact version; TESS images are built from Dockerfile targets that exist', () => {
    const targets = new Set(dockerfile.stages.map((s) => s.name));
    for (const [name, service] of Object.entries(services)) {
      if (isObj(service.build)) {
        expect(service.build.context, name).toBe('.');
        expect(
          targets.has(String(service.build.target)),
          `${name}: target ${String(service.build.target)}`,
        ).toBe(true);
        expect(service.image, `${name}: built, not pulled`).toBeUndefined();
      } else {
        expect(isPinnedImage(String(service.image)), `${name}: ${String(service.image)}`).toBe(true);
      }
    }
    expect(isPinnedImage('redis:latest')).toBe(false);
    expect(isPinnedImage('postgres:16')).toBe(false);
    expect(isPinnedImage('redis')).toBe(false);
  });

  it('depends_on always waits for a condition, on services that exist', () => {
    const allowed = new Set(['service_healthy', 'service_completed_successfully']);
    for (const [name, service] of Object.entries(services)) {
      if (service.depends_on === undefined) continue;
      expect(isObj(service.depends_on), `${name}: long syntax`).toBe(true);
      for (const [dependency, spec] of Object.entries(service.depends_on as Obj)) {
        expect(services[dependency], `${name} -> ${dependency}`).toBeDefined();
        expect(allowed.has(String(dig(spec, 'condition'))), `${name} -> ${dependency}`).toBe(true);
        if (dig(spec, 'condition') === 'service_healthy')
          expect(services[dependency]!.healthcheck).toBeDefined();
      }
    }
    const common = {
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      'minio-init': { condition: 'service_completed_successfully' },
      migrate: { condition: 'service_completed_successfully' },
    };
    expect(services.gateway!.depends_on).toEqual(common);
    // Workers scan every upload: they start once clamd answers.
    expect(services['crypto-worker']!.depends_on).toEqual({
      ...common,
      clamav: { condition: 'service_healthy' },
    });
  });

  it('postgres, redis and minio keep their data on named volumes; redis: noeviction + append-only file', () => {
    expect(mounts('postgres').get('/var/lib/postgresql/data')).toBe('pgdata');
    expect(mounts('redis').get('/data')).toBe('redisdata');
    expect(mounts('minio').get('/data')).toBe('miniodata');
    for (const v of ['pgdata', 'redisdata', 'miniodata', 'tess-data', 'tess-tmp'])
      expect(volumes).toHaveProperty(v);
    const command = asArray<string>(services.redis!.command).join(' ');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(command).toContain('--appendonly yes');
  });

  it('gateway and workers share the temp volume at TEMP_DIR and the key volume at DATA_DIR (master key file)', () => {
    for (const name of ['gateway', 'crypto-worker']) {
      const env = composeEnvironment(services[name]!.environment);
      expect(mounts(name).get(env.TEMP_DIR!), `${name} TEMP_DIR`).toBe('tess-tmp');
      expect(mounts(name).get(env.DATA_DIR!), `${name} DATA_DIR`).toBe('tess-data');
      expect(env.MASTER_KEY_FILE!.startsWith(`${env.DATA_DIR}/`)).toBe(true);
    }
  });

  it('workers scan with the clamav service: SCAN_MODE=required, CLAMD_URL at it, started only once clamd is healthy', () => {
    const env = composeEnvironment(services['crypto-worker']!.environment);
    expect(env.SCAN_MODE).toBe('required');
    expect(env.CLAMD_URL).toBe('tcp://clamav:3310');
    expect(dig(services['crypto-worker'], 'depends_on', 'clamav', 'condition')).toBe('service_healthy');
    expect(asArray<string>(dig(services.clamav, 'healthcheck', 'test'))).toEqual(['CMD', 'clamdcheck.sh']);
    expect(mounts('clamav').get('/var/lib/clamav')).toBe('clamav-db');
    expect(services.clamav!.ports, 'clamd is not published').toBeUndefined();
  });

  it("clamd's limits cover MAX_FILE_SIZE, and what exceeds a limit is reported, never passed", () => {
    const conf = readFileSync(join(ROOT, 'deploy', 'clamav', 'clamd.conf'), 'utf8');
    const setting = (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(conf)?.[1];
    const maxFileSize = loadConfig({}).uploads.maxFileSize;
    for (const name of ['StreamMaxLength', 'MaxFileSize', 'MaxScanSize']) {
      const value = setting(name);
      expect(value, name).toMatch(/^\d+M$/);
      expect(Number.parseInt(value!, 10) * 1024 * 1024, name).toBeGreaterThanOrEqual(maxFileSize);
    }
    expect(setting('AlertExceedsMax')).toBe('yes');
    expect(setting('TCPSocket')).toBe('3310');
  });

  it('the bucket the init step creates is the one TESS uses', () => {
    expect(composeEnvironment(services['minio-init']!.environment).S3_BUCKET).toBe(tessEnv.S3_BUCKET);
    const script = asArray<string>(services['minio-init']!.command).join(' ');
    expect(script).toContain('mc mb --ignore-existing "tess/$$S3_BUCKET"');
    expect(script).toContain('"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}');
    expect(script).toContain('mc ilm rule import "tess/$$S3_BUCKET"');
  });

  it('crypto-worker scales: no container_name, no published port; the gateway publishes PORT', () => {
    for (const service of Object.values(services)) expect(service.container_name).toBeUndefined();
    expect(services['crypto-worker']!.ports).toBeUndefined();
    expect(asArray<string>(services.gateway!.ports)).toEqual([
      `\${TESS_PUBLISH:-127.0.0.1:3000}:${port('PORT')}`,
    ]);
  });

  it('healthchecks probe /healthz on PORT (gateway) and WORKER_HEALTH_PORT (worker)', () => {
    expect(asArray<string>(dig(services.gateway, 'healthcheck', 'test')).join(' ')).toContain(
      `http://127.0.0.1:${port('PORT')}/healthz`,
    );
    expect(asArray<string>(dig(services['crypto-worker'], 'healthcheck', 'test')).join(' ')).toContain(
      `http://127.0.0.1:${port('WORKER_HEALTH_PORT')}/healthz`,
    );
  });

  it('workers get longer than WORKER_SHUTDOWN_TIMEOUT to stop', () => {
    const timeoutMs = envSchema.shape.WORKER_SHUTDOWN_TIMEOUT.parse(
      envExample.get('WORKER_SHUTDOWN_TIMEOUT'),
    );
    expect(durationSeconds(services['crypto-worker']!.stop_grace_period) * 1000).toBeGreaterThan(
      timeoutMs + 10_000,
    );
  });

  it('localstack is opt-in (profile) and the env example documents switching the key provider to it', () => {
    expect(services.localstack!.profiles).toEqual(['localstack']);
    for (const [name, service] of Object.entries(services))
      if (name !== 'localstack') expect(service.profiles).toBeUndefined();
    const allLines = parseEnvFile(readFileSync(join(ROOT, 'deploy', 'tess.env.example'), 'utf8'), true);
    expect(allLines.get('KEY_PROVIDER')).toBe('aws-secrets-manager');
    expect(allLines.get('SECRETS_MANAGER_ENDPOINT')).toBe('http://localstack:4566');
    expect(allLines.get('COMPOSE_PROFILES')).toBe('localstack');
  });

  it('TESS containers run read-only without capabilities', () => {
    for (const name of ['gateway', 'crypto-worker', 'migrate']) {
      expect(services[name]!.read_only, name).toBe(true);
      expect(services[name]!.cap_drop, name).toEqual(['ALL']);
      expect(services[name]!.tmpfs, name).toEqual(['/tmp']);
    }
  });

  it('the placeholder compose file it replaced is gone', () => {
    expect(composeText).not.toMatch(/placeholder/i);
  });
});

/** A Compose CLI, if this machine has one: v2 plugin first, then Debian's docker-compose (v1). */
const composeCli: string[] | undefined = toolWorks('docker', ['compose', 'version'])
  ? ['docker', 'compose']
  : toolWorks('docker-compose', ['version'])
    ? ['docker-compose']
    : undefined;

describe.skipIf(!composeCli)(
  `docker-compose.yml through the Compose CLI (${composeCli?.join(' ') ?? 'none installed'})`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'tess-compose-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    // The env file the walkthrough tells users to create: the example with its secrets filled in.
    copyFileSync(join(ROOT, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
    copyFileSync(join(ROOT, 'Dockerfile'), join(dir, 'Dockerfile'));
    mkdirSync(join(dir, 'deploy', 'clamav'), { recursive: true });
    copyFileSync(join(ROOT, 'deploy', 'clamav', 'clamd.conf'), join(dir, 'deploy', 'clamav', 'clamd.conf'));
    const filled = readFileSync(join(ROOT, 'deploy', 'tess.env.example'), 'utf8')
      .replace(/^POSTGRES_PASSWORD=$/m, 'POSTGRES_PASSWORD=pgpass0123456789')
      .replace(/^SESSION_SECRET=$/m, 'SESSION_SECRET=session-secret-0123456789-0123456789-0123456789')
      .replace(/^MINIO_ROOT_PASSWORD=$/m, 'MINIO_ROOT_PASSWORD=miniopass0123456789');
    writeFileSync(join(dir, 'deploy', 'tess.env'), filled);
    const cli = composeCli!;

    it('config -q accepts the file with the walkthrough env file', () => {
      const result = run(cli[0]!, [...cli.slice(1), '--env-file', 'deploy/tess.env', 'config', '-q'], dir);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    });

    it('config resolves the secrets into the containers and keeps the worker scalable', () => {
      const result = run(cli[0]!, [...cli.slice(1), '--env-file', 'deploy/tess.env', 'config'], dir);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('postgres://tess:pgpass0123456789@postgres:5432/tess');
      expect(result.stdout).not.toContain('${');
    });

    it('config refuses to run without the secrets, naming the missing variable', () => {
      writeFileSync(join(dir, 'empty.env'), '');
      const result = run(cli[0]!, [...cli.slice(1), '--env-file', 'empty.env', 'config', '-q'], dir);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/POSTGRES_PASSWORD|SESSION_SECRET|MINIO_ROOT/);
    });
  },
);
