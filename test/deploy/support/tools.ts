import { spawnSync } from 'node:child_process';
import { ROOT } from '../../support/paths.js';
import { isObj, type Obj, parseYamlDocuments } from './manifests.js';

/** Running command-line tools when they exist here (kubectl, docker compose). */

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
