import type { AddressInfo } from 'node:net';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FileRepository, type FileStatus, type TessConfig } from '#common';
import { WorkerModule } from '../../apps/crypto-worker/src/worker.module.js';
import { createGatewayApp } from '../../apps/gateway/src/app.factory.js';
import { createTestEnv, type TestEnv } from './test-env.js';

export interface RunningGateway {
  app: NestExpressApplication;
  url: string;
}

/** The real gateway, listening on a free loopback port. */
export async function startGateway(config: TessConfig): Promise<RunningGateway> {
  const app = await createGatewayApp(config);
  await app.listen(0, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

/**
 * The real crypto worker module inside the test process (fast to start; the separate-process tests
 * live in test/pipeline). Its health port is picked by the OS.
 */
export async function startInProcessWorker(config: TessConfig): Promise<INestApplicationContext> {
  const worker = await NestFactory.createApplicationContext(
    WorkerModule.forRoot({ ...config, worker: { ...config.worker, healthPort: 0 } }),
    { logger: ['error', 'warn'], abortOnError: false },
  );
  await worker.init();
  return worker;
}

/** Polls the file row until it reaches one of `statuses` (or throws after `timeoutMs`). */
export async function waitForStatus(
  files: FileRepository,
  id: string,
  statuses: FileStatus[] = ['stored', 'failed'],
  timeoutMs = 30_000,
): Promise<FileStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const file = await files.findById(id);
    if (file && statuses.includes(file.status)) return file.status;
    if (Date.now() > deadline)
      throw new Error(`file ${id} is still ${file?.status ?? 'missing'} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface TestStack {
  env: TestEnv;
  gw: RunningGateway;
  worker: INestApplicationContext;
  close(): Promise<void>;
}

/** A private environment with a listening gateway and an in-process worker; `close` removes it all. */
export async function startStack(overrides: Record<string, string> = {}): Promise<TestStack> {
  const env = await createTestEnv(overrides);
  const gw = await startGateway(env.config);
  const worker = await startInProcessWorker(env.config);
  return {
    env,
    gw,
    worker,
    async close() {
      await worker.close();
      await gw.app.close();
      await env.cleanup();
    },
  };
}
