import type { JobStage } from '../jobs/index.js';

/** A file the gateway accepted (its row is `queued`); every open dashboard of the owner lists it at once. */
export interface FileCreatedEvent {
  fileId: string;
  filename: string;
  size: number;
}

/** Server -> client Socket.IO events, delivered only to the owner's sockets (room `user:<id>`). */
export interface ServerToClientEvents {
  'file:created': (event: FileCreatedEvent) => void;
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
    /** The upload was a new version of this file, which now serves it (its own row is gone). */
    versionOf?: string;
    /** The version the upload became. */
    version?: number;
  }) => void;
  'job:failed': (event: { jobId: string; fileId: string; error: string }) => void;
}

/** Between gateway replicas (Socket.IO server-side emits through the Redis adapter). */
export interface InterServerEvents {
  /** Accepted by one replica; each replica relays it to its own sockets of the owner. */
  'files:created': (ownerId: string, files: FileCreatedEvent[]) => void;
}

/** The clients send nothing; state is read over REST. */
export type ClientToServerEvents = Record<string, never>;

export function userRoom(userId: string): string {
  return `user:${userId}`;
}
