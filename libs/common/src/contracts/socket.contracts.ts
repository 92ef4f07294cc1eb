import type { JobStage } from '../jobs/index.js';

/** Server -> client Socket.IO events, delivered only to the owner's sockets (room `user:<id>`). */
export interface ServerToClientEvents {
  'job:progress': (event: {
    jobId: string;
    fileId: string;
    stage: JobStage;
    bytesDone: number;
    bytesTotal: number;
  }) => void;
  'job:completed': (event: {
    jobId: string;
    fileId: string;
    sha1: string;
    sha256: string;
    size: number;
  }) => void;
  'job:failed': (event: { jobId: string; fileId: string; error: string }) => void;
}

/** The clients send nothing; state is read over REST. */
export type ClientToServerEvents = Record<string, never>;

export function userRoom(userId: string): string {
  return `user:${userId}`;
}
