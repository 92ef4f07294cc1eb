import { Controller, Get, HttpCode, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { checkReadiness, OBJECT_STORE, type ObjectStore, readinessStatusCode } from '#common';
import { REDIS } from '../infra/redis.module.js';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
  ) {}

  /** Liveness: the process serves requests. */
  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process serves requests' })
  @HttpCode(200)
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: every dependency a request needs answers; 503 otherwise (with which one failed). */
  @Get('readyz')
  @ApiOperation({
    summary: 'Readiness: database, Redis and the object store answer (503 names the failing one)',
  })
  @ApiResponse({ status: 503, description: 'A dependency is unavailable' })
  async readyz() {
    const report = await checkReadiness({
      database: () => this.dataSource.query('SELECT 1'),
      redis: () => this.redis.ping(),
      objectStore: () => this.store.check(),
    });
    if (readinessStatusCode(report) !== 200) {
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'not ready',
        ...report,
      });
    }
    return report;
  }
}
