import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bullPrefix, envSchema, LocalFileMasterKeySource, QUEUE_NAMES } from '#common';
import { ROOT } from '../support/paths.js';
import { isPinnedImage } from './support/dockerfile.js';
import {
  asArray,
  dig,
  findObject,
  isObj,
  K8S_DIR,
  KINDS,
  KUSTOMIZE_KINDS,
  k8sDocuments,
  type Obj,
  podOf,
  readYaml,
  schemaProblems,
  typeKey,
} from './support/manifests.js';
import { KUBECTL, kustomize } from './support/tools.js';

/**
 * Every YAML document under k8s/ (base, components, overlays and the Secret examples) must be a known
 * kind that validates against the Kubernetes API schema (kubernetes-models, KEDA models for KEDA's
 * CRDs) with no unknown fields; kustomize must build each entry point (when kubectl is installed); and
 * the manifests must say what the apps need: probes on the routes they serve, the ports they listen on,
 * the shared temp volume at TEMP_DIR, a grace period longer than the worker's shutdown timeout...
 */

const docs = k8sDocuments();
const apiDocs = docs.filter((d) => !KUSTOMIZE_KINDS.has(typeKey(d.obj)));
const base = readYaml(join(K8S_DIR, 'base', 'kustomization.yaml'))[0] as Obj;
const baseObjects = asArray<string>(base.resources).flatMap((file) =>
  readYaml(join(K8S_DIR, 'base', file)).filter(isObj),
);
const configMap = findObject(baseObjects, 'ConfigMap', 'tess-config');
const config = configMap.data as Record<string, string>;
const gateway = findObject(baseObjects, 'Deployment', 'tess-gateway');
const worker = findObject(baseObjects, 'Deployment', 'tess-crypto-worker');
const secretExamples = readYaml(join(K8S_DIR, 'secret.example.yaml')).filter(isObj);

const MiB = 1024 * 1024;
/** A production secret as `openssl rand -base64 48` prints one (production refuses `xxxx…`). */
const SESSION_SECRET = 'q3X9v0bK2mR7tYp4LwZ8sNf1HcJ6dGe5aUiOxQkVbT0rMnPy';
const parsedConfig = envSchema.parse({ ...config, SESSION_SECRET });

function label(d: { file: string; index: number; obj: Obj }): string {
  return `${d.file}#${d.index} ${String(d.obj.kind)} ${String(dig(d.obj, 'metadata', 'name') ?? '')}`;
}

function mainContainer(deployment: Obj, name: string): Obj {
  const container = podOf(deployment)!.containers.find((c) => c.name === name);
  if (!container) throw new Error(`container ${name} not found`);
  return container;
}

/** The containerPort a probe targets (named or numeric port). */
function probePort(container: Obj, probe: string): number | undefined {
  const port = dig(container, probe, 'httpGet', 'port');
  if (typeof port === 'number') return port;
  const named = asArray(container.ports).find((p) => p.name === port);
  return named ? Number(named.containerPort) : undefined;
}

function selectorMatches(selector: unknown, labels: unknown): boolean {
  const matchLabels = dig(selector, 'matchLabels');
  if (!isObj(matchLabels) || !isObj(labels)) return false;
  return Object.entries(matchLabels).every(([k, v]) => labels[k] === v);
}

function parseQuantity(value: string): number {
  const m = /^(\d+)([KMGT]i?|[kmgt])?$/.exec(value);
  if (!m) throw new Error(`not a quantity: ${value}`);
  const units: Record<string, number> = {
    k: 1e3,
    m: 1e6,
    g: 1e9,
    t: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
  };
  return Number(m[1]) * (m[2] ? (units[m[2]] ?? units[m[2].toLowerCase()] ?? 1) : 1);
}

describe('k8s/: every YAML document', () => {
  it('exists, and every file parses as YAML', () => {
    expect(apiDocs.length).toBeGreaterThan(15);
  });

  it.each(docs.map((d) => [label(d), d] as const))('%s is a known kind', (_name, d) => {
    expect(KINDS[typeKey(d.obj)] !== undefined || KUSTOMIZE_KINDS.has(typeKey(d.obj))).toBe(true);
  });

  it.each(apiDocs.map((d) => [label(d), d] as const))('%s validates against the API schema', (_name, d) => {
    expect(schemaProblems(d.obj)).toEqual([]);
  });

  it('names every object and namespaces the Secret examples in the TESS namespace', () => {
    for (const d of apiDocs) expect(dig(d.obj, 'metadata', 'name'), label(d)).toBeTruthy();
    for (const d of apiDocs.filter((x) => x.obj.kind === 'Secret')) {
      expect(dig(d.obj, 'metadata', 'namespace'), label(d)).toBe('tess');
    }
  });

  it('catches what the schema alone would not: an unknown field fails the check', () => {
    const broken = structuredClone(gateway);
    (dig(broken, 'spec', 'template', 'spec', 'containers', 0) as Obj).readinesProbe = {};
    expect(schemaProblems(broken)).toEqual([
      'Deployment.spec.template.spec.containers[0].readinesProbe: unknown field',
    ]);
    expect(schemaProblems({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })[0]).toMatch(/unknown/);
  });
});

describe('k8s/: kustomizations', () => {
  const kustomizations = docs.filter((d) => KUSTOMIZE_KINDS.has(typeKey(d.obj)));
  const allowed = new Set([
    'apiVersion',
    'kind',
    'namespace',
    'labels',
    'resources',
    'components',
    'patches',
    'images',
    'configMapGenerator',
    'secretGenerator',
  ]);

  it.each(kustomizations.map((d) => [d.file, d] as const))(
    '%s uses known fields and existing paths',
    (_f, d) => {
      for (const key of Object.keys(d.obj)) expect(allowed.has(key), `${d.file}: ${key}`).toBe(true);
      const dir = dirname(join(ROOT, d.file));
      for (const entry of [...asArray<string>(d.obj.resources), ...asArray<string>(d.obj.components)]) {
        expect(existsSync(resolve(dir, entry)), `${d.file}: ${entry}`).toBe(true);
      }
      for (const patch of asArray(d.obj.patches)) {
        if (typeof patch.path === 'string') expect(existsSync(resolve(dir, patch.path))).toBe(true);
        else expect(typeof patch.patch).toBe('string');
      }
    },
  );

  it('never lists a Secret example as a resource (placeholders are never applied)', () => {
    for (const d of kustomizations) {
      for (const entry of [...asArray<string>(d.obj.resources), ...asArray<string>(d.obj.components)]) {
        expect(entry, d.file).not.toMatch(/secret/i);
      }
    }
    for (const d of apiDocs.filter((x) => x.obj.kind === 'Secret')) {
      expect(d.file, 'Secrets only in *secret.example.yaml').toMatch(/secret\.example\.yaml$/);
    }
  });

  it('k8s/kustomization.yaml is the entry point: the base, which lists every base manifest', () => {
    const top = readYaml(join(K8S_DIR, 'kustomization.yaml'))[0] as Obj;
    expect(top.resources).toEqual(['base']);
    const baseFiles = docs.filter(
      (d) => d.file.startsWith('k8s/base/') && !d.file.endsWith('kustomization.yaml'),
    );
    const listed = new Set(asArray<string>(base.resources).map((f) => `k8s/base/${f}`));
    for (const d of baseFiles) expect(listed.has(d.file), d.file).toBe(true);
  });
});

const entryPoints = ['k8s', 'k8s/overlays/hpa', 'k8s/overlays/dev'];

describe.skipIf(!KUBECTL)('k8s/: kustomize build (kubectl kustomize, what apply -k sends)', () => {
  const rendered = Object.fromEntries(entryPoints.map((dir) => [dir, kustomize(join(ROOT, dir))]));

  it.each(entryPoints)(
    '%s: every rendered object validates, is namespaced in tess, and uses pinned images',
    (dir) => {
      const objects = rendered[dir]!;
      expect(objects.length).toBeGreaterThan(10);
      for (const obj of objects) {
        const name = `${typeKey(obj)} ${String(dig(obj, 'metadata', 'name'))}`;
        expect(schemaProblems(obj), name).toEqual([]);
        if (KINDS[typeKey(obj)]!.namespaced) expect(dig(obj, 'metadata', 'namespace'), name).toBe('tess');
        const pod = podOf(obj);
        for (const c of pod ? [...pod.containers, ...pod.initContainers] : []) {
          expect(isPinnedImage(String(c.image)), `${name}: ${String(c.image)}`).toBe(true);
        }
      }
      expect(
        objects.filter((o) => o.kind === 'Secret'),
        'no Secret is ever rendered',
      ).toEqual([]);
    },
  );

  it.each(entryPoints)('%s: exactly one autoscaler owns the crypto workers', (dir) => {
    const objects = rendered[dir]!;
    const owners = objects.filter(
      (o) =>
        (o.kind === 'ScaledObject' || o.kind === 'HorizontalPodAutoscaler') &&
        dig(o, 'spec', 'scaleTargetRef', 'name') === 'tess-crypto-worker',
    );
    expect(owners).toHaveLength(1);
    expect(owners[0]!.kind).toBe(dir.endsWith('hpa') ? 'HorizontalPodAutoscaler' : 'ScaledObject');
    if (dir.endsWith('hpa'))
      expect(objects.filter((o) => String(o.apiVersion).startsWith('keda.sh'))).toEqual([]);
  });

  it('the dev overlay runs PostgreSQL, Redis and MinIO in the cluster with a matching configuration', () => {
    const objects = rendered['k8s/overlays/dev']!;
    for (const name of ['postgres', 'redis', 'minio']) {
      expect(findObject(objects, 'StatefulSet', name)).toBeTruthy();
      expect(findObject(objects, 'Service', name)).toBeTruthy();
    }
    const devConfig = findObject(objects, 'ConfigMap', 'tess-config').data as Record<string, string>;
    expect(devConfig.S3_ENDPOINT).toBe('http://minio:9000');
    expect(devConfig.S3_FORCE_PATH_STYLE).toBe('true');
    const redis = findObject(objects, 'StatefulSet', 'redis');
    expect((dig(redis, 'spec', 'template', 'spec', 'containers', 0, 'args') as string[]).join(' ')).toContain(
      '--maxmemory-policy noeviction',
    );
    // Whatever the overlay patches, the configuration stays valid.
    expect(envSchema.safeParse({ ...devConfig, SESSION_SECRET }).success).toBe(true);
  });
});

describe('k8s/base: gateway', () => {
  const container = mainContainer(gateway, 'gateway');

  it('runs 2+ replicas, spread across nodes and zones', () => {
    expect(Number(dig(gateway, 'spec', 'replicas'))).toBeGreaterThanOrEqual(2);
    const spread = asArray(dig(gateway, 'spec', 'template', 'spec', 'topologySpreadConstraints'));
    expect(spread.map((s) => s.topologyKey).sort()).toEqual([
      'kubernetes.io/hostname',
      'topology.kubernetes.io/zone',
    ]);
    for (const s of spread) {
      expect(selectorMatches(s.labelSelector, dig(gateway, 'spec', 'template', 'metadata', 'labels'))).toBe(
        true,
      );
    }
  });

  it('probes /healthz (startup, liveness) and /readyz (readiness) on the port the gateway listens on (PORT)', () => {
    expect(dig(container, 'startupProbe', 'httpGet', 'path')).toBe('/healthz');
    expect(dig(container, 'livenessProbe', 'httpGet', 'path')).toBe('/healthz');
    expect(dig(container, 'readinessProbe', 'httpGet', 'path')).toBe('/readyz');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(probePort(container, probe), probe).toBe(parsedConfig.PORT);
    }
  });

  it('is reached through its Service and Ingress on that port', () => {
    const service = findObject(baseObjects, 'Service', 'tess-gateway');
    expect(
      selectorMatches(
        { matchLabels: dig(service, 'spec', 'selector') },
        dig(gateway, 'spec', 'template', 'metadata', 'labels'),
      ),
    ).toBe(true);
    const servicePort = asArray(dig(service, 'spec', 'ports'))[0]!;
    const target = asArray(container.ports).find((p) => p.name === servicePort.targetPort);
    expect(Number(target?.containerPort)).toBe(parsedConfig.PORT);
    const ingress = findObject(baseObjects, 'Ingress', 'tess');
    const backend = dig(ingress, 'spec', 'rules', 0, 'http', 'paths', 0, 'backend', 'service') as Obj;
    expect(backend.name).toBe('tess-gateway');
    expect(dig(backend, 'port', 'name')).toBe(servicePort.name);
  });

  it('Ingress: body limit above MAX_FILE_SIZE, long timeouts, streaming bodies, cookie affinity for Socket.IO polling', () => {
    const ingress = findObject(baseObjects, 'Ingress', 'tess');
    const a = dig(ingress, 'metadata', 'annotations') as Record<string, string>;
    const bodySize = parseQuantity(a['nginx.ingress.kubernetes.io/proxy-body-size']!);
    expect(bodySize).toBeGreaterThan(parsedConfig.MAX_FILE_SIZE + MiB);
    expect(Number(a['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(600);
    expect(Number(a['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(600);
    expect(a['nginx.ingress.kubernetes.io/proxy-request-buffering']).toBe('off');
    expect(a['nginx.ingress.kubernetes.io/affinity']).toBe('cookie');
    expect(dig(ingress, 'spec', 'rules', 0, 'host')).toBe(new URL(config.PUBLIC_URL!).hostname);
    expect(dig(ingress, 'spec', 'tls', 0, 'hosts', 0)).toBe(new URL(config.PUBLIC_URL!).hostname);
  });
});

describe('k8s/base: crypto worker', () => {
  const container = mainContainer(worker, 'crypto-worker');

  it('probes /healthz and /readyz on WORKER_HEALTH_PORT', () => {
    expect(dig(container, 'livenessProbe', 'httpGet', 'path')).toBe('/healthz');
    expect(dig(container, 'startupProbe', 'httpGet', 'path')).toBe('/healthz');
    expect(dig(container, 'readinessProbe', 'httpGet', 'path')).toBe('/readyz');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(probePort(container, probe), probe).toBe(parsedConfig.WORKER_HEALTH_PORT);
    }
  });

  it('gets a grace period longer than a large job and longer than WORKER_SHUTDOWN_TIMEOUT', () => {
    const grace = Number(dig(worker, 'spec', 'template', 'spec', 'terminationGracePeriodSeconds'));
    expect(grace).toBeGreaterThanOrEqual(600);
    expect(parsedConfig.WORKER_SHUTDOWN_TIMEOUT).toBeLessThan(grace * 1000 - 30_000);
    expect(parsedConfig.WORKER_SHUTDOWN_TIMEOUT).toBeGreaterThanOrEqual(60_000);
  });

  it('leaves replicas to the autoscaler (kubectl apply must not reset them)', () => {
    expect(dig(worker, 'spec', 'replicas')).toBeUndefined();
  });

  it('KEDA scales it on the BullMQ wait list of the configured prefix, and keeps busy workers', () => {
    const scaled = findObject(baseObjects, 'ScaledObject', 'tess-crypto-worker');
    expect(dig(scaled, 'spec', 'scaleTargetRef', 'name')).toBe('tess-crypto-worker');
    const queueKey = `${bullPrefix(config.REDIS_PREFIX!)}:${QUEUE_NAMES.crypto}`;
    const triggers = asArray(dig(scaled, 'spec', 'triggers'));
    expect(triggers.every((t) => t.type === 'redis')).toBe(true);
    const waiting = triggers.find((t) => dig(t, 'metadata', 'listName') === `${queueKey}:wait`);
    expect(waiting, `a trigger on ${queueKey}:wait`).toBeDefined();
    expect(Number(dig(waiting, 'metadata', 'listLength'))).toBeGreaterThan(0);
    const active = triggers.find((t) => dig(t, 'metadata', 'listName') === `${queueKey}:active`);
    expect(Number(dig(active, 'metadata', 'listLength'))).toBe(parsedConfig.WORKER_CONCURRENCY);
    const min = Number(dig(scaled, 'spec', 'minReplicaCount'));
    expect(min).toBeGreaterThanOrEqual(0);
    expect(Number(dig(scaled, 'spec', 'maxReplicaCount'))).toBeGreaterThan(min);
    // Every trigger authenticates through the TriggerAuthentication, whose Secret keys are documented.
    const auth = findObject(baseObjects, 'TriggerAuthentication', 'tess-redis');
    const kedaSecret = findObject(secretExamples, 'Secret', 'tess-keda-redis');
    for (const t of triggers) expect(dig(t, 'authenticationRef', 'name')).toBe('tess-redis');
    for (const ref of asArray(dig(auth, 'spec', 'secretTargetRef'))) {
      expect(ref.name).toBe('tess-keda-redis');
      expect(Object.keys(kedaSecret.stringData as Obj)).toContain(ref.key);
    }
  });

  it('the CPU HPA fallback targets it and deletes the ScaledObject (never two autoscalers)', () => {
    const component = readYaml(join(K8S_DIR, 'components', 'hpa-fallback', 'kustomization.yaml'))[0] as Obj;
    const hpa = readYaml(join(K8S_DIR, 'components', 'hpa-fallback', 'hpa.yaml')).find(isObj)!;
    expect(dig(hpa, 'spec', 'scaleTargetRef', 'name')).toBe('tess-crypto-worker');
    expect(dig(hpa, 'spec', 'metrics', 0, 'resource', 'name')).toBe('cpu');
    const patches = asArray(component.patches).map((p) => String(p.patch));
    expect(patches.some((p) => p.includes('$patch: delete') && p.includes('kind: ScaledObject'))).toBe(true);
  });
});

describe('k8s/base: clamav (malware scanning)', () => {
  const clamav = findObject(baseObjects, 'Deployment', 'tess-clamav');
  const service = findObject(baseObjects, 'Service', 'tess-clamav');
  const conf = String(dig(findObject(baseObjects, 'ConfigMap', 'tess-clamav-config'), 'data', 'clamd.conf'));
  const setting = (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(conf)?.[1];

  it('workers scan every upload with the clamd behind the tess-clamav Service', () => {
    expect(parsedConfig.SCAN_MODE).toBe('required');
    const labels = dig(clamav, 'spec', 'template', 'metadata', 'labels') as Obj;
    expect(selectorMatches({ matchLabels: dig(service, 'spec', 'selector') }, labels)).toBe(true);
    const port = asArray(dig(service, 'spec', 'ports'))[0]!;
    expect(parsedConfig.CLAMD_URL).toBe(`tcp://tess-clamav:${Number(port.port)}`);
    expect(setting('TCPSocket')).toBe(String(port.port));
  });

  it("clamd's limits cover MAX_FILE_SIZE, and what exceeds a limit is reported, never passed", () => {
    for (const name of ['StreamMaxLength', 'MaxFileSize', 'MaxScanSize']) {
      expect(Number.parseInt(setting(name)!, 10) * MiB, name).toBeGreaterThanOrEqual(
        parsedConfig.MAX_FILE_SIZE,
      );
    }
    expect(setting('AlertExceedsMax')).toBe('yes');
  });

  it('only the crypto workers may connect to clamd', () => {
    const policies = baseObjects.filter(
      (o) =>
        o.kind === 'NetworkPolicy' &&
        dig(o, 'spec', 'podSelector', 'matchLabels', 'app.kubernetes.io/component') === 'clamav',
    );
    expect(policies).toHaveLength(1);
    const rules = asArray(dig(policies[0], 'spec', 'ingress'));
    const workerLabels = dig(worker, 'spec', 'template', 'metadata', 'labels') as Obj;
    const gatewayLabels = dig(gateway, 'spec', 'template', 'metadata', 'labels') as Obj;
    const peers = rules.flatMap((r) => asArray(r.from));
    expect(peers.every((p) => isObj(p.podSelector) && !p.namespaceSelector)).toBe(true);
    expect(peers.some((p) => selectorMatches(p.podSelector as Obj, workerLabels))).toBe(true);
    expect(peers.some((p) => selectorMatches(p.podSelector as Obj, gatewayLabels))).toBe(false);
    expect(rules.flatMap((r) => asArray(r.ports).map((p) => Number(p.port)))).toEqual([3310]);
  });
});

describe('k8s/base: shared settings', () => {
  const tessPods = [gateway, worker, findObject(baseObjects, 'Job', 'tess-migrate')];

  it('every pod in k8s/ is non-root, read-only, without capabilities, with requests and limits', () => {
    const owners = apiDocs.map((d) => ({ d, pod: podOf(d.obj) })).filter((x) => x.pod);
    expect(owners.length).toBeGreaterThanOrEqual(7);
    for (const { d, pod } of owners) {
      const podSec = (pod!.spec.securityContext ?? {}) as Obj;
      expect(dig(podSec, 'seccompProfile', 'type'), label(d)).toBe('RuntimeDefault');
      expect(pod!.spec.automountServiceAccountToken, label(d)).toBe(false);
      for (const c of [...pod!.containers, ...pod!.initContainers]) {
        const name = `${label(d)} container ${String(c.name)}`;
        const sec = (c.securityContext ?? {}) as Obj;
        expect(sec.runAsNonRoot ?? podSec.runAsNonRoot, name).toBe(true);
        expect(Number(sec.runAsUser ?? podSec.runAsUser), name).toBeGreaterThan(0);
        expect(sec.allowPrivilegeEscalation, name).toBe(false);
        expect(sec.readOnlyRootFilesystem, name).toBe(true);
        expect(dig(sec, 'capabilities', 'drop'), name).toEqual(['ALL']);
        for (const kind of ['requests', 'limits']) {
          expect(dig(c, 'resources', kind, 'cpu'), `${name} ${kind}.cpu`).toBeDefined();
          expect(dig(c, 'resources', kind, 'memory'), `${name} ${kind}.memory`).toBeDefined();
        }
      }
    }
  });

  it('TESS pods run as uid 10001 (the image user) with a writable /tmp and the config from tess-config/tess-secrets', () => {
    for (const obj of tessPods) {
      const pod = podOf(obj)!;
      const name = String(dig(obj, 'metadata', 'name'));
      expect(dig(pod.spec, 'securityContext', 'runAsUser'), name).toBe(10001);
      const c = pod.containers[0]!;
      const tmp = asArray(c.volumeMounts).find((m) => m.mountPath === '/tmp');
      const volume = asArray(pod.spec.volumes).find((v) => v.name === tmp?.name);
      expect(volume?.emptyDir, `${name}: /tmp is an emptyDir`).toBeDefined();
      expect(
        asArray(c.envFrom).map((e) => dig(e, 'configMapRef', 'name') ?? dig(e, 'secretRef', 'name')),
      ).toEqual(['tess-config', 'tess-secrets']);
    }
  });

  it('gateway and workers mount the ReadWriteMany temp volume at TEMP_DIR', () => {
    const pvc = findObject(baseObjects, 'PersistentVolumeClaim', 'tess-temp');
    expect(dig(pvc, 'spec', 'accessModes')).toEqual(['ReadWriteMany']);
    for (const obj of [gateway, worker]) {
      const pod = podOf(obj)!;
      const volume = asArray(pod.spec.volumes).find(
        (v) => dig(v, 'persistentVolumeClaim', 'claimName') === 'tess-temp',
      );
      const mount = asArray(pod.containers[0]!.volumeMounts).find((m) => m.name === volume?.name);
      expect(mount?.mountPath, String(dig(obj, 'metadata', 'name'))).toBe(config.TEMP_DIR);
    }
  });

  it('the master key file comes from the Secret through the init container, never created by a pod', () => {
    expect(config.KEY_PROVIDER).toBe('local');
    const keyDir = dirname(config.MASTER_KEY_FILE!);
    for (const obj of [gateway, worker]) {
      const pod = podOf(obj)!;
      const init = pod.initContainers.find((c) => c.name === 'install-master-key')!;
      const script = asArray<string>(init.command).join(' ');
      expect(script).toContain('exit 1');
      expect(script).toContain('chmod 0600');
      expect(asArray(init.volumeMounts).some((m) => m.mountPath === keyDir)).toBe(true);
      const appMount = asArray(pod.containers[0]!.volumeMounts).find((m) => m.mountPath === keyDir);
      const volume = asArray(pod.spec.volumes).find((v) => v.name === appMount?.name);
      expect(dig(volume, 'emptyDir', 'medium')).toBe('Memory');
      const secret = asArray(pod.spec.volumes).find(
        (v) => dig(v, 'secret', 'secretName') === 'tess-master-key',
      );
      // 0440 with fsGroup: readable by the app user; the copy is 0600 (TESS refuses group-readable keys).
      expect(dig(secret, 'secret', 'defaultMode')).toBe(0o440);
    }
  });

  it('the migration Job runs the built migrate script', () => {
    const job = findObject(baseObjects, 'Job', 'tess-migrate');
    const c = podOf(job)!.containers[0]!;
    expect(c.command).toEqual(['node', 'dist/scripts/migrate.js', 'up']);
    expect(existsSync(join(ROOT, 'scripts', 'migrate.ts'))).toBe(true);
    expect(dig(job, 'spec', 'template', 'spec', 'restartPolicy')).toBe('Never');
    expect(String(c.image)).toMatch(/^tess\/gateway:/);
  });

  it('PodDisruptionBudgets cover both Deployments', () => {
    for (const [name, obj] of [
      ['tess-gateway', gateway],
      ['tess-crypto-worker', worker],
    ] as const) {
      const pdb = findObject(baseObjects, 'PodDisruptionBudget', name);
      expect(
        selectorMatches(dig(pdb, 'spec', 'selector'), dig(obj, 'spec', 'template', 'metadata', 'labels')),
      ).toBe(true);
    }
    expect(
      Number(dig(findObject(baseObjects, 'PodDisruptionBudget', 'tess-gateway'), 'spec', 'minAvailable')),
    ).toBeLessThan(Number(dig(gateway, 'spec', 'replicas')));
  });

  it('NetworkPolicies: default deny; only the gateway port is open to the ingress controller; workers only to metrics', () => {
    const policies = baseObjects.filter((o) => o.kind === 'NetworkPolicy');
    const deny = policies.find(
      (p) =>
        isObj(dig(p, 'spec', 'podSelector')) &&
        Object.keys(dig(p, 'spec', 'podSelector') as Obj).length === 0,
    );
    expect(deny, 'a default-deny policy').toBeDefined();
    expect(dig(deny, 'spec', 'policyTypes')).toEqual(['Ingress']);
    expect(dig(deny, 'spec', 'ingress')).toBeUndefined();
    const gatewayLabels = dig(gateway, 'spec', 'template', 'metadata', 'labels') as Obj;
    const workerLabels = dig(worker, 'spec', 'template', 'metadata', 'labels') as Obj;
    const applies = (policy: Obj, labels: Obj) => {
      const selector = dig(policy, 'spec', 'podSelector') as Obj;
      if (selector.matchLabels) return selectorMatches(selector, labels);
      return asArray(selector.matchExpressions).every(
        (e) => e.operator === 'In' && asArray<string>(e.values).includes(String(labels[String(e.key)])),
      );
    };
    const openPorts = (labels: Obj) =>
      policies
        .filter((p) => p !== deny && applies(p, labels))
        .flatMap((p) =>
          asArray(dig(p, 'spec', 'ingress')).flatMap((rule) =>
            asArray(rule.ports).map((port) => Number(port.port)),
          ),
        );
    expect(new Set(openPorts(gatewayLabels))).toEqual(new Set([parsedConfig.PORT]));
    expect(new Set(openPorts(workerLabels))).toEqual(new Set([parsedConfig.WORKER_HEALTH_PORT]));
    const fromIngress = policies.find(
      (p) => p.metadata && dig(p, 'metadata', 'name') === 'tess-gateway-from-ingress-controller',
    )!;
    expect(applies(fromIngress, gatewayLabels)).toBe(true);
    expect(applies(fromIngress, workerLabels)).toBe(false);
  });
});

describe('k8s/secret.example.yaml', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tess-deploy-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds placeholders only', () => {
    for (const secret of secretExamples) {
      for (const [key, value] of Object.entries((secret.stringData ?? {}) as Record<string, string>)) {
        if (key === 'MINIO_ROOT_USER' || key === 'address') continue;
        expect(value, `${String(dig(secret, 'metadata', 'name'))}.${key}`).toContain('REPLACE_ME');
      }
      expect(secret.data, 'no base64 data').toBeUndefined();
    }
  });

  it('has placeholders TESS refuses to start with: the session secret...', () => {
    const secrets = findObject(secretExamples, 'Secret', 'tess-secrets').stringData as Record<string, string>;
    const result = envSchema.safeParse({ ...config, ...secrets });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain('SESSION_SECRET');
  });

  it('...and the master keyring', async () => {
    const placeholder = findObject(secretExamples, 'Secret', 'tess-master-key').stringData as Record<
      string,
      string
    >;
    const path = join(dir, 'placeholder.key');
    writeFileSync(path, placeholder['master.key']!);
    chmodSync(path, 0o600);
    await expect(new LocalFileMasterKeySource({ path, createIfMissing: false }).current()).rejects.toThrow(
      /malformed/,
    );
  });

  it('deploy/generate-master-key.mjs makes a keyring TESS accepts', async () => {
    const path = join(dir, 'master.key');
    writeFileSync(path, execFileSync(process.execPath, [join(ROOT, 'deploy', 'generate-master-key.mjs')]));
    chmodSync(path, 0o600);
    const key = await new LocalFileMasterKeySource({ path, createIfMissing: false }).current();
    expect(key.key).toHaveLength(32);
    expect(JSON.parse(readFileSync(path, 'utf8')).current).toBe(key.id);
  });

  it('is referenced from the docs', () => {
    const docsText = readFileSync(join(ROOT, 'docs', 'deployment.md'), 'utf8');
    expect(docsText).toContain(relative(ROOT, join(K8S_DIR, 'secret.example.yaml')));
  });
});
