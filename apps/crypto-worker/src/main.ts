import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig } from '#common';
import { WorkerModule } from './worker.module.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    abortOnError: false,
    logger: ['fatal', 'error', 'warn', 'log'],
  });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  new Logger('CryptoWorker').log(`TESS crypto worker started (concurrency ${config.worker.concurrency})`);
}

main().catch((error: unknown) => {
  console.error(
    `\nTESS crypto worker could not start:\n${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
