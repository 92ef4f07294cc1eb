// Before `npm start` starts anything: is each port it needs free, and if not, who holds it?
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/** Resolves true when `host:port` can be listened on right now. */
function canListen(host, port) {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** Linux: the socket inode listening on `port` (/proc/net/tcp and tcp6, state 0A = LISTEN). */
function listeningInode(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && fields[1]?.endsWith(`:${hex}`)) return fields[9];
    }
  }
  return undefined;
}

/** Linux: pid and command line of the process holding socket `inode` (only processes we may inspect). */
function processWithSocket(inode) {
  const target = `socket:[${inode}]`;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let fds;
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) {
          const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
          return { pid: Number(pid), command };
        }
      } catch {
        // the fd closed meanwhile
      }
    }
  }
  return undefined;
}

/** What answers on the port: a TESS gateway (X-Request-Id on /healthz), a TESS worker, or something else. */
async function probeTess(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    const body = await res.json().catch(() => undefined);
    if (!res.ok || body?.status !== 'ok') return undefined;
    return res.headers.has('x-request-id') ? 'a TESS gateway' : 'a TESS crypto worker';
  } catch {
    return undefined;
  }
}

/**
 * Checks each `{ name, variable, port }` on `host`; returns one plain sentence per taken port, naming the
 * holder when it can be found (its pid and command, or "another TESS" when it answers like one).
 */
export async function takenPorts(host, ports) {
  const problems = [];
  for (const { name, variable, port } of ports) {
    if (port === 0 || (await canListen(host, port))) continue;
    const holder = (() => {
      const inode = listeningInode(port);
      return inode && inode !== '0' ? processWithSocket(inode) : undefined;
    })();
    const tess = await probeTess(port);
    const who = [
      tess ? `it is another TESS (${tess} answers /healthz)` : undefined,
      holder ? `held by pid ${holder.pid}: ${holder.command}` : undefined,
    ].filter(Boolean);
    problems.push(
      `Port ${port} (${variable}, ${name}) on ${host} is already in use${who.length ? `: ${who.join('; ')}` : ''}.`,
    );
  }
  return problems;
}
