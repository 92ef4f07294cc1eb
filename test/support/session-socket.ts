import { io, type Socket } from 'socket.io-client';
import type { ServerToClientEvents } from '#common';

/**
 * Opens a Socket.IO connection with a session cookie from an allowed origin and waits until it is
 * connected (rejects with the handshake's refusal). The caller disconnects it.
 */
export async function openSessionSocket(
  base: string,
  cookie: string,
  origin: string,
): Promise<Socket<ServerToClientEvents>> {
  const socket: Socket<ServerToClientEvents> = io(base, {
    transports: ['websocket'],
    extraHeaders: { Cookie: cookie, Origin: origin },
    reconnection: false,
    forceNew: true,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => {
      socket.disconnect();
      reject(error);
    });
  });
  return socket;
}
