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
import { ROOT } from '../../support/paths.js';

/**
 * Reading the manifests exactly as kubectl and Compose read them (YAML 1.1: `0440` is octal, `<<`
 * merges) and validating Kubernetes objects against the API schema.
 */

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
