import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envSchema, loadConfig } from '#common';
import { ROOT } from '../support/paths.js';
import { composeEnvironment, interpolateDeep, interpolationNames, parseEnvFile } from './support/compose.js';
import { parseDockerfile, stageEnv } from './support/dockerfile.js';
import { asArray, dig, findObject, isObj, K8S_DIR, type Obj, podOf, readYaml } from './support/manifests.js';
import { KUBECTL, kustomize } from './support/tools.js';

/**
 * No drift between the deployment files and the config schema (libs/common/src/config/config.schema.ts,
 * the single source of truth for variable names): every variable the files set is one TESS reads (or a
 * listed third-party one), and each deployment sets what production needs, with values the schema accepts.
 */

const schemaNames = new Set(Object.keys(envSchema.shape));

/**
 * Names that are not TESS configuration, each with the reason it may appear. Anything else that is not
 * in the schema is a typo or a stale name and fails the tests.
 */
const NON_TESS_VARS: Record<string, string> = {
  // Image environment, read by the runtime rather than by TESS.
  GLIBC_TUNABLES: "glibc malloc thresholds for the worker's crypto loop (STACK notes)",
  NODE_OPTIONS: 'Node.js runtime flags an operator may add',
  NPM_CONFIG_UPDATE_NOTIFIER: 'silences npm in the image',
  NPM_CONFIG_FUND: 'silences npm during the image build',
  NPM_CONFIG_AUDIT: 'silences npm during the image build',
  SCARF_ANALYTICS: 'opts out of a dependency telemetry ping during the image build',
  // AWS SDK default credential chain (Secrets Manager through LocalStack in compose; S3 without static keys).
  AWS_ACCESS_KEY_ID: 'AWS SDK credentials (default chain)',
  AWS_SECRET_ACCESS_KEY: 'AWS SDK credentials (default chain)',
  AWS_REGION: 'AWS SDK region (default chain)',
  // The PostgreSQL image (compose service, dev overlay StatefulSet).
  POSTGRES_USER: 'postgres image: role created on first start',
  POSTGRES_PASSWORD: "postgres image: that role's password (compose interpolates it into DATABASE_URL)",
  POSTGRES_DB: 'postgres image: database created on first start',
  PGDATA: 'postgres image: data directory below the volume mount',
  // MinIO server and client images.
  MINIO_ROOT_USER: 'minio image: root user (compose passes it to TESS as S3_ACCESS_KEY_ID)',
  MINIO_ROOT_PASSWORD: 'minio image: root password (compose passes it to TESS as S3_SECRET_ACCESS_KEY)',
  MINIO_API_STALE_UPLOADS_EXPIRY:
    "minio image: aborts multipart uploads this old (the bucket's lifecycle rule)",
  MINIO_API_STALE_UPLOADS_CLEANUP_INTERVAL: 'minio image: how often it looks for such uploads',
  MC_CONFIG_DIR: 'mc image: writable config directory (read-only root filesystem)',
  HOME: 'minio image: writable home (read-only root filesystem)',
  // LocalStack image.
  SERVICES: 'localstack image: which AWS services to start',
  // Compose itself (read from deploy/tess.env through --env-file; never used by TESS).
  TESS_PUBLISH: 'compose: host address:port of the published gateway port',
  COMPOSE_PROFILES: 'compose: enables the localstack profile',
};

function unknownNames(names: Iterable<string>): string[] {
  return [...names].filter((n) => !schemaNames.has(n) && !(n in NON_TESS_VARS)).sort();
}

// --- sources -----------------------------------------------------------------------------------------

const compose = readYaml(join(ROOT, 'docker-compose.yml'))[0] as Obj;
const services = compose.services as Record<string, Obj>;
const envExampleText = readFileSync(join(ROOT, 'deploy', 'tess.env.example'), 'utf8');
const envExample = parseEnvFile(envExampleText);
const envExampleAll = parseEnvFile(envExampleText, true);
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const baseKustomization = readYaml(join(K8S_DIR, 'base', 'kustomization.yaml'))[0] as Obj;
const baseObjects = asArray<string>(baseKustomization.resources).flatMap((f) =>
  readYaml(join(K8S_DIR, 'base', f)).filter(isObj),
);
const devObjects = ['postgres.yaml', 'redis.yaml', 'minio.yaml'].flatMap((f) =>
  readYaml(join(K8S_DIR, 'overlays', 'dev', f)).filter(isObj),
);
const configMap = findObject(baseObjects, 'ConfigMap', 'tess-config').data as Record<string, string>;
const secretExample = findObject(
  readYaml(join(K8S_DIR, 'secret.example.yaml')).filter(isObj),
  'Secret',
  'tess-secrets',
).stringData as Record<string, string>;

/** The TESS services of the compose file: those built from the Dockerfile, by target. */
const tessServices = Object.entries(services).filter(([, s]) => isObj(s.build));

/** Values a user puts into deploy/tess.env for the secrets the example leaves empty. */
const FILLED_SECRETS = {
  POSTGRES_PASSWORD: 'pgpass0123456789abcdef',
  SESSION_SECRET: 'test-session-secret-0123456789-0123456789-abcdefgh',
  MINIO_ROOT_PASSWORD: 'miniopass0123456789',
};

function filledEnvFile(): Map<string, string> {
  const filled = new Map(envExample);
  for (const [k, v] of Object.entries(FILLED_SECRETS)) {
    expect(filled.get(k), `${k} is left empty in the example`).toBe('');
    filled.set(k, v);
  }
  return filled;
}

/** What a compose TESS container sees: image ENV, then env_file, then environment (Compose's order). */
function composeContainerEnv(name: string): Record<string, string> {
  const service = interpolateDeep(services[name], filledEnvFile()) as Obj;
  const target = String(dig(service, 'build', 'target'));
  const envFiles = asArray<string>(service.env_file);
  expect(envFiles).toEqual(['deploy/tess.env']);
  return {
    ...stageEnv(dockerfile, target),
    ...Object.fromEntries(filledEnvFile()),
    ...composeEnvironment(service.environment),
  };
}

/** What a Kubernetes TESS container sees: image ENV, then envFrom (ConfigMap, Secret), then env. */
function k8sContainerEnv(
  obj: Obj,
  secrets: Record<string, string>,
  configData = configMap,
): Record<string, string> {
  const container = podOf(obj)!.containers[0]!;
  const target = String(container.image).includes('crypto-worker') ? 'crypto-worker' : 'gateway';
  const env: Record<string, string> = { ...stageEnv(dockerfile, target) };
  for (const source of asArray(container.envFrom)) {
    if (dig(source, 'configMapRef', 'name') === 'tess-config') Object.assign(env, configData);
    else if (dig(source, 'secretRef', 'name') === 'tess-secrets') Object.assign(env, secrets);
    else throw new Error(`unexpected envFrom ${JSON.stringify(source)}`);
  }
  for (const e of asArray(container.env)) env[String(e.name)] = String(e.value ?? '');
  return env;
}

const REAL_SECRETS = {
  ...secretExample,
  DATABASE_URL: 'postgres://tess:pw@db.internal:5432/tess',
  REDIS_URL: 'redis://:pw@redis.internal:6379',
  SESSION_SECRET: 'k8s-session-secret-0123456789-0123456789-abcdefgh',
  METRICS_TOKEN: 'k8s-metrics-token-0123456789abcdef',
  S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
  S3_SECRET_ACCESS_KEY: 'secret',
};

// --- names -------------------------------------------------------------------------------------------

describe('env var names exist in the config schema (or are listed third-party names)', () => {
  it('docker-compose.yml: every service environment', () => {
    const names = Object.values(services).flatMap((s) => Object.keys(composeEnvironment(s.environment)));
    expect(names.length).toBeGreaterThan(20);
    expect(unknownNames(names)).toEqual([]);
  });

  it('deploy/tess.env.example: every line, commented options included', () => {
    expect(envExampleAll.size).toBeGreaterThan(envExample.size);
    expect(unknownNames(envExampleAll.keys())).toEqual([]);
  });

  it('k8s ConfigMap tess-config and the Secret example tess-secrets use TESS names only', () => {
    expect(unknownNames(Object.keys(configMap))).toEqual([]);
    expect(Object.keys(configMap).filter((n) => !schemaNames.has(n))).toEqual([]);
    expect(Object.keys(secretExample).filter((n) => !schemaNames.has(n))).toEqual([]);
  });

  it('k8s Deployments, Jobs and StatefulSets: every env entry of every container', () => {
    const names = [...baseObjects, ...devObjects].flatMap((obj) => {
      const pod = podOf(obj);
      return pod
        ? [...pod.containers, ...pod.initContainers].flatMap((c) => asArray(c.env).map((e) => String(e.name)))
        : [];
    });
    expect(names.length).toBeGreaterThan(5);
    expect(unknownNames(names)).toEqual([]);
  });

  it('Dockerfile: every ENV of every stage', () => {
    const names = dockerfile.stages.flatMap((s) => Object.keys(stageEnv(dockerfile, s.name ?? '')));
    expect(unknownNames(names)).toEqual([]);
  });

  it('every variable docker-compose.yml interpolates is documented in deploy/tess.env.example', () => {
    const used = interpolationNames(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
    expect([...used].filter((n) => !envExample.has(n))).toEqual([]);
  });

  it('the allowlist stays small and every entry is used somewhere', () => {
    const everything = [
      readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'),
      envExampleText,
      readFileSync(join(ROOT, 'Dockerfile'), 'utf8'),
      ...['postgres.yaml', 'redis.yaml', 'minio.yaml'].map((f) =>
        readFileSync(join(K8S_DIR, 'overlays', 'dev', f), 'utf8'),
      ),
    ].join('\n');
    const unused = Object.keys(NON_TESS_VARS).filter(
      (n) => !everything.includes(n) && n !== 'NODE_OPTIONS' && n !== 'AWS_REGION',
    );
    expect(unused).toEqual([]);
    expect(Object.keys(NON_TESS_VARS).filter((n) => schemaNames.has(n))).toEqual([]);
  });
});

// --- values ------------------------------------------------------------------------------------------

describe('docker-compose.yml: each TESS container gets a complete, valid configuration', () => {
  it.each(tessServices.map(([name]) => name))('%s', (name) => {
    const env = composeContainerEnv(name);
    const parsed = envSchema.safeParse(
      Object.fromEntries(Object.entries(env).filter(([k, v]) => schemaNames.has(k) && v !== '')),
    );
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    // Required here, although the schema has development defaults: they point at 127.0.0.1 or are public.
    for (const key of [
      'SESSION_SECRET',
      'DATABASE_URL',
      'REDIS_URL',
      'STORAGE_DRIVER',
      'S3_BUCKET',
      'TEMP_DIR',
      'DATA_DIR',
    ]) {
      expect(env[key], key).toBeTruthy();
    }
    expect(env.HOST).toBe('0.0.0.0');
    expect(env.STORAGE_DRIVER).toBe('s3');
    expect(env.S3_FORCE_PATH_STYLE).toBe('true');
    expect(new URL(env.S3_ENDPOINT!).hostname).toBe('minio');
    expect(new URL(env.DATABASE_URL!).hostname).toBe('postgres');
    expect(new URL(env.REDIS_URL!).hostname).toBe('redis');
    expect(env.SESSION_SECRET).toBe(FILLED_SECRETS.SESSION_SECRET);
    expect(env.S3_SECRET_ACCESS_KEY).toBe(FILLED_SECRETS.MINIO_ROOT_PASSWORD);
  });

  it('the secrets are required: without them Compose stops with a message naming the variable', () => {
    const withoutSecrets = new Map(envExample);
    expect(() => interpolateDeep(services.gateway, withoutSecrets)).toThrow(
      /POSTGRES_PASSWORD|SESSION_SECRET|MINIO_ROOT/,
    );
    expect(() => interpolateDeep(services.postgres, withoutSecrets)).toThrow(/POSTGRES_PASSWORD/);
    expect(() => interpolateDeep(services.minio, withoutSecrets)).toThrow(/MINIO_ROOT_PASSWORD/);
  });

  it('the gateway, workers and migrations resolve to the same database, Redis, bucket, key file and temp dir', () => {
    const configs = tessServices.map(([name]) => {
      const env = composeContainerEnv(name);
      return loadConfig(env, '/app');
    });
    const pick = (c: ReturnType<typeof loadConfig>) => ({
      db: c.database.url,
      redis: c.redis.url,
      prefix: c.redis.prefix,
      storage: c.storage,
      key: c.keys.masterKeyFile,
      temp: c.tempDir,
      env: c.env,
    });
    for (const c of configs.slice(1)) expect(pick(c)).toEqual(pick(configs[0]!));
  });
});

describe('k8s: each TESS container gets a complete, valid production configuration', () => {
  // TESS's own pods (its images); the clamav Deployment runs ClamAV's image with its own configuration.
  const owners = baseObjects.filter((o) =>
    podOf(o)?.containers.some((c) => String(c.image).startsWith('tess/')),
  );
  it('covers the gateway, the workers and the migration Job', () => {
    expect(owners.map((o) => String(dig(o, 'metadata', 'name'))).sort()).toEqual([
      'tess-crypto-worker',
      'tess-gateway',
      'tess-migrate',
    ]);
  });

  it.each(owners.map((o) => [`${String(o.kind)} ${String(dig(o, 'metadata', 'name'))}`, o] as const))(
    '%s',
    (_n, obj) => {
      const env = k8sContainerEnv(obj, REAL_SECRETS);
      const parsed = envSchema.safeParse(
        Object.fromEntries(Object.entries(env).filter(([k]) => schemaNames.has(k))),
      );
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
      expect(env.NODE_ENV).toBe('production');
      expect(env.HOST).toBe('0.0.0.0');
      for (const key of [
        'SESSION_SECRET',
        'DATABASE_URL',
        'REDIS_URL',
        'S3_BUCKET',
        'TEMP_DIR',
        'MASTER_KEY_FILE',
      ]) {
        expect(env[key], key).toBeTruthy();
      }
      // The Secret example provides every secret the configuration needs; the ConfigMap none of them.
      for (const key of ['SESSION_SECRET', 'DATABASE_URL', 'REDIS_URL']) {
        expect(Object.keys(configMap)).not.toContain(key);
        expect(Object.keys(secretExample)).toContain(key);
      }
    },
  );

  it('the worker and gateway agree on the shared state (temp dir, key file, Redis prefix, bucket)', () => {
    const gateway = loadConfig(
      k8sContainerEnv(findObject(baseObjects, 'Deployment', 'tess-gateway'), REAL_SECRETS),
      '/app',
    );
    const worker = loadConfig(
      k8sContainerEnv(findObject(baseObjects, 'Deployment', 'tess-crypto-worker'), REAL_SECRETS),
      '/app',
    );
    expect(worker.tempDir).toBe(gateway.tempDir);
    expect(worker.keys).toEqual(gateway.keys);
    expect(worker.redis).toEqual(gateway.redis);
    expect(worker.storage).toEqual(gateway.storage);
    expect(dirname(gateway.keys.masterKeyFile)).toBe('/var/run/tess/keys');
  });

  it.skipIf(!KUBECTL)('the rendered dev overlay configuration is valid too', () => {
    const objects = kustomize(join(ROOT, 'k8s', 'overlays', 'dev'));
    const devConfig = findObject(objects, 'ConfigMap', 'tess-config').data as Record<string, string>;
    const secrets = {
      ...REAL_SECRETS,
      DATABASE_URL: 'postgres://tess:pw@postgres:5432/tess',
      REDIS_URL: 'redis://redis:6379',
    };
    for (const name of ['tess-gateway', 'tess-crypto-worker']) {
      const env = k8sContainerEnv(findObject(objects, 'Deployment', name), secrets, devConfig);
      expect(() => loadConfig(env, '/app')).not.toThrow();
    }
  });
});
