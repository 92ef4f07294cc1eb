import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a loopback HTTP server that can slow what clients send to `rate` bytes per
 * second (0: full speed) and counts those bytes, so a test can stop a client in the middle of an upload
 * and see how much a later run really sent.
 */
export interface SlowProxy {
  base: string;
  rate: number;
  /** Bytes clients sent through the proxy since the last reset. */
  sent: number;
  close(): Promise<void>;
}

export async function slowProxy(target: string): Promise<SlowProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const proxy: SlowProxy = { base: '', rate: 0, sent: 0, close: () => close(server) };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      proxy.sent += chunk.length;
      const flushed = upstream.write(chunk);
      if (!proxy.rate && flushed) return;
      client.pause();
      const wait = proxy.rate ? (chunk.length / proxy.rate) * 1000 : 0;
      const resume = () => setTimeout(() => client.resume(), wait);
      if (flushed) resume();
      else upstream.once('drain', resume);
    });
    client.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  proxy.base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  function close(s: Server): Promise<void> {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => s.close(() => resolve()));
  }
  return proxy;
}
