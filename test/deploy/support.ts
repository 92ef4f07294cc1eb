import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { kedaSh } from '@kubernetes-models/keda';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../support/paths.js';

/**
 * Shared helpers for the deployment tests: reading the manifests exactly as kubectl and Compose read
 * them (YAML 1.1: `0440` is octal, `<<` merges), validating Kubernetes objects against the API schema,
 * and parsing the Dockerfile and env files.
 */

export { ROOT };
export const K8S_DIR = join(ROOT, 'k8s');

export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Follows a dotted path through objects (array indexes as numbers); undefined when any step is missing. */
export function dig(value: unknown, ...path: (string | number)[]): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (Array.isArray(current) && typeof key === 'number') current = current[key];
    else if (isObj(current) && typeof key === 'string') current = current[key];
    else return undefined;
  }
  return current;
}

export function asArray<T = Obj>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

// --- YAML --------------------------------------------------------------------------------------------

/** Every document of a YAML text, as plain data; throws on any YAML error (with the file name). */
export function parseYamlDocuments(text: string, source: string): unknown[] {
  const docs = parseAllDocuments(text, { version: '1.1', merge: true, prettyErrors: true });
  if (!Array.isArray(docs)) throw new Error(`${source}: not a YAML stream`);
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export function readYaml(path: string): unknown[] {
  return parseYamlDocuments(readFileSync(path, 'utf8'), relative(ROOT, path));
}

export function listFiles(dir: string, suffixes: string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...listFiles(path, suffixes));
    else if (suffixes.some((s) => entry.endsWith(s))) out.push(path);
  }
  return out.sort();
}

export interface ManifestDoc {
  file: string;
  index: number;
  obj: Obj;
}

/** Every document of every YAML file under k8s/ (base, components, overlays, examples). */
export function k8sDocuments(): ManifestDoc[] {
  return listFiles(K8S_DIR, ['.yaml', '.yml']).flatMap((path) =>
    readYaml(path).map((obj, index) => {
      if (!isObj(obj)) throw new Error(`${relative(ROOT, path)} document ${index} is not a mapping`);
      return { file: relative(ROOT, path), index, obj };
    }),
  );
}

export function findObject(docs: Obj[], kind: string, name: string): Obj {
  const found = docs.filter((d) => d.kind === kind && dig(d, 'metadata', 'name') === name);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} ${name}, found ${found.length}`);
  return found[0]!;
}

// --- Kubernetes API schema ---------------------------------------------------------------------------

interface Validatable {
  validate(): void;
}

interface KindInfo {
  /** kubernetes-models model class: validate() checks types, enums and required fields. */
  model: new (
    data: never,
  ) => Validatable;
  /** The .d.ts declaring the object's interface, for the unknown-field check below. */
  declaration: string;
  interfaceName: string;
  namespaced: boolean;
}

const require = createRequire(import.meta.url);
const K8S_MODELS = dirname(require.resolve('kubernetes-models'));
const KEDA_MODELS = dirname(require.resolve('@kubernetes-models/keda'));

function kind(
  model: KindInfo['model'],
  base: string,
  file: string,
  name: string,
  namespaced = true,
): KindInfo {
  return { model, declaration: join(base, `${file}.d.ts`), interfaceName: name, namespaced };
}

/** apiVersion/kind -> model. A manifest of any other kind fails the tests (add it here deliberately). */
export const KINDS: Record<string, KindInfo> = {
  'v1/Namespace': kind(Namespace as never, K8S_MODELS, 'v1/Namespace', 'INamespace', false),
  'v1/ConfigMap': kind(ConfigMap as never, K8S_MODELS, 'v1/ConfigMap', 'IConfigMap'),
  'v1/Secret': kind(Secret as never, K8S_MODELS, 'v1/Secret', 'ISecret'),
  'v1/Service': kind(Service as never, K8S_MODELS, 'v1/Service', 'IService'),
  'v1/PersistentVolumeClaim': kind(
    PersistentVolumeClaim as never,
    K8S_MODELS,
    'v1/PersistentVolumeClaim',
    'IPersistentVolumeClaim',
  ),
  'apps/v1/Deployment': kind(Deployment as never, K8S_MODELS, 'apps/v1/Deployment', 'IDeployment'),
  'apps/v1/StatefulSet': kind(StatefulSet as never, K8S_MODELS, 'apps/v1/StatefulSet', 'IStatefulSet'),
  'batch/v1/Job': kind(Job as never, K8S_MODELS, 'batch/v1/Job', 'IJob'),
  'policy/v1/PodDisruptionBudget': kind(
    PodDisruptionBudget as never,
    K8S_MODELS,
    'policy/v1/PodDisruptionBudget',
    'IPodDisruptionBudget',
  ),
  'autoscaling/v2/HorizontalPodAutoscaler': kind(
    HorizontalPodAutoscaler as never,
    K8S_MODELS,
    'autoscaling/v2/HorizontalPodAutoscaler',
    'IHorizontalPodAutoscaler',
  ),
  'networking.k8s.io/v1/Ingress': kind(
    Ingress as never,
    K8S_MODELS,
    'networking.k8s.io/v1/Ingress',
    'IIngress',
  ),
  'networking.k8s.io/v1/NetworkPolicy': kind(
    NetworkPolicy as never,
    K8S_MODELS,
    'networking.k8s.io/v1/NetworkPolicy',
    'INetworkPolicy',
  ),
  'keda.sh/v1alpha1/ScaledObject': kind(
    kedaSh.v1alpha1.ScaledObject as never,
    KEDA_MODELS,
    'keda.sh/v1alpha1/ScaledObject',
    'IScaledObject',
  ),
  'keda.sh/v1alpha1/TriggerAuthentication': kind(
    kedaSh.v1alpha1.TriggerAuthentication as never,
    KEDA_MODELS,
    'keda.sh/v1alpha1/TriggerAuthentication',
    'ITriggerAuthentication',
  ),
};

/** Kustomize's own files: not API objects, checked separately. */
export const KUSTOMIZE_KINDS = new Set([
  'kustomize.config.k8s.io/v1beta1/Kustomization',
  'kustomize.config.k8s.io/v1alpha1/Component',
]);

export function typeKey(obj: Obj): string {
  return `${String(obj.apiVersion)}/${String(obj.kind)}`;
}

let checker: { program: ts.Program; checker: ts.TypeChecker } | undefined;

/**
 * kubernetes-models validates types and required fields but, like the API server's schemas, accepts
 * fields it does not know; kubectl with --validate=strict would reject them (a misspelt
 * `readinesProbe` is otherwise silently ignored). The models' TypeScript declarations list every
 * field, so walk the object against them with the TypeScript checker.
 */
export function unknownFields(obj: Obj): string[] {
  const info = KINDS[typeKey(obj)];
  if (!info) return [`${typeKey(obj)}: unknown kind`];
  if (!checker) {
    const program = ts.createProgram(
      Object.values(KINDS).map((k) => k.declaration),
      {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
    );
    checker = { program, checker: program.getTypeChecker() };
  }
  const { program, checker: tc } = checker;
  const source = program.getSourceFile(info.declaration);
  if (!source) throw new Error(`cannot load ${info.declaration}`);
  const moduleSymbol = tc.getSymbolAtLocation(source);
  const exported =
    moduleSymbol && tc.getExportsOfModule(moduleSymbol).find((s) => s.name === info.interfaceName);
  if (!exported) throw new Error(`${info.declaration} does not export ${info.interfaceName}`);
  const errors: string[] = [];
  walkFields(tc, obj, tc.getDeclaredTypeOfSymbol(exported), String(obj.kind), errors);
  return errors;
}

function walkFields(tc: ts.TypeChecker, value: unknown, type: ts.Type, path: string, errors: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const candidates = (type.isUnion() ? type.types : [type]).filter(
    (t) => (t.flags & ts.TypeFlags.Object) !== 0,
  );
  if (candidates.length === 0) return;
  if (Array.isArray(value)) {
    const array = candidates.find((t) => tc.isArrayType(t));
    if (!array) return;
    const element = tc.getTypeArguments(array as ts.TypeReference)[0];
    if (!element) return;
    for (const [i, item] of value.entries()) walkFields(tc, item, element, `${path}[${i}]`, errors);
    return;
  }
  const objectType = candidates.find((t) => !tc.isArrayType(t));
  if (!objectType) return;
  const index = tc.getIndexInfoOfType(objectType, ts.IndexKind.String);
  for (const [key, child] of Object.entries(value)) {
    const property = objectType.getProperty(key);
    if (property) {
      walkFields(tc, child, tc.getNonNullableType(tc.getTypeOfSymbol(property)), `${path}.${key}`, errors);
    } else if (index) {
      walkFields(tc, child, index.type, `${path}.${key}`, errors);
    } else {
      errors.push(`${path}.${key}: unknown field`);
    }
  }
}

/** Schema problems of one object: kubernetes-models validation, then unknown fields. */
export function schemaProblems(obj: Obj): string[] {
  const info = KINDS[typeKey(obj)];
  if (!info) return [`unknown apiVersion/kind ${typeKey(obj)}: add it to KINDS in test/deploy/support.ts`];
  try {
    new info.model(obj as never).validate();
  } catch (error) {
    return [(error as Error).message];
  }
  return unknownFields(obj);
}

// --- Pods --------------------------------------------------------------------------------------------

export interface PodOwner {
  obj: Obj;
  spec: Obj;
  containers: Obj[];
  initContainers: Obj[];
}

/** The pod template of a Deployment, StatefulSet or Job; undefined for other kinds. */
export function podOf(obj: Obj): PodOwner | undefined {
  if (!['Deployment', 'StatefulSet', 'Job'].includes(String(obj.kind))) return undefined;
  const spec = dig(obj, 'spec', 'template', 'spec');
  if (!isObj(spec))
    throw new Error(`${String(obj.kind)} ${String(dig(obj, 'metadata', 'name'))} has no pod spec`);
  return { obj, spec, containers: asArray(spec.containers), initContainers: asArray(spec.initContainers) };
}

// --- env files ---------------------------------------------------------------------------------------

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

// --- Dockerfile --------------------------------------------------------------------------------------

export interface DockerInstruction {
  keyword: string;
  args: string;
}

export interface DockerStage {
  name: string | undefined;
  from: string;
  instructions: DockerInstruction[];
}

export interface Dockerfile {
  args: Map<string, string>;
  stages: DockerStage[];
}

/** A small Dockerfile parser: comments, line continuations, global ARGs, stages and their instructions. */
export function parseDockerfile(text: string): Dockerfile {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (pending === '' && line.trim() === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = '';
  }
  if (pending) logical.push(pending.trim());
  const args = new Map<string, string>();
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (keyword === 'FROM') {
      const parts = rest.split(/\s+/);
      const asIndex = parts.findIndex((p) => p.toUpperCase() === 'AS');
      stages.push({
        from: parts.filter((p) => !p.startsWith('--'))[0]!,
        name: asIndex >= 0 ? parts[asIndex + 1] : undefined,
        instructions: [],
      });
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [name, ...value] = rest.split('=');
        args.set(name!.trim(), value.join('=').trim());
      }
    } else {
      stages.at(-1)!.instructions.push({ keyword, args: rest });
    }
  }
  return { args, stages };
}

/** The stage and its ancestors (FROM <earlier stage>), nearest first. */
export function stageChain(dockerfile: Dockerfile, name: string): DockerStage[] {
  const chain: DockerStage[] = [];
  let current = dockerfile.stages.find((s) => s.name === name);
  while (current) {
    chain.push(current);
    const parent = current.from;
    current = dockerfile.stages.find((s) => s.name === parent);
  }
  return chain;
}

/** ENV of a stage including what it inherits (`ENV A=1 B=2` form). */
export function stageEnv(dockerfile: Dockerfile, name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const stage of stageChain(dockerfile, name).reverse()) {
    for (const { keyword, args } of stage.instructions) {
      if (keyword !== 'ENV') continue;
      for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) {
        env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
      }
    }
  }
  return env;
}

/** The last instruction of a keyword in the stage or its ancestors (USER, CMD, HEALTHCHECK...). */
export function effectiveInstruction(
  dockerfile: Dockerfile,
  name: string,
  keyword: string,
): string | undefined {
  for (const stage of stageChain(dockerfile, name)) {
    const found = stage.instructions.filter((i) => i.keyword === keyword).at(-1);
    if (found) return found.args;
  }
  return undefined;
}

/** The JSON array form of CMD / HEALTHCHECK CMD, parsed. */
export function execForm(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string'))
    throw new Error(`not exec form: ${text}`);
  return parsed;
}

// --- images ------------------------------------------------------------------------------------------

/** A reference is pinned when it names an exact version (not latest, not a bare major) or a digest. */
export function isPinnedImage(reference: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(reference)) return true;
  const lastSlash = reference.lastIndexOf('/');
  const colon = reference.indexOf(':', lastSlash + 1);
  if (colon < 0) return false;
  const tag = reference.slice(colon + 1);
  if (/latest|edge|nightly|main|master/i.test(tag)) return false;
  // Needs a dotted version (16.15-alpine, 0.1.0) or a dated release (RELEASE.2025-09-07T16-13-09Z).
  return /\d+\.\d+/.test(tag) || /\d{4}-\d{2}-\d{2}/.test(tag);
}

// --- tools -------------------------------------------------------------------------------------------

/** Whether a command-line tool runs here (kubectl, docker compose, docker-compose). */
export function toolWorks(command: string, args: string[]): boolean {
  try {
    const result = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
    return result.status === 0;
  } catch {
    return false;
  }
}

export function run(
  command: string,
  args: string[],
  cwd = ROOT,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return {
    status: result.status,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? result.error?.message ?? '',
  };
}

export const KUBECTL = toolWorks('kubectl', ['version', '--client']);

/** `kubectl kustomize <dir>`: what `kubectl apply -k <dir>` would send to the API server. */
export function kustomize(dir: string): Obj[] {
  const result = run('kubectl', ['kustomize', dir]);
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${result.stderr}`);
  return parseYamlDocuments(result.stdout, `kubectl kustomize ${dir}`).filter(isObj);
}
