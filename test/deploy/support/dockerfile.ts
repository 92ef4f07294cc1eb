/** Parsing the Dockerfile: stages, their inherited instructions and environment; image references. */

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
