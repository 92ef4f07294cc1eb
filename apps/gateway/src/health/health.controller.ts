import { Controller, Get, HttpCode, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { checkReadiness, OBJECT_STORE, type ObjectStore, readinessStatusCode } from '#common';
import { LivenessDto, NotReadyDto, PUBLIC, ReadinessDto } from '../http/openapi.js';
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
  @ApiOperation({ summary: 'Liveness: the process serves requests', operationId: 'checkLiveness', ...PUBLIC })
  @ApiResponse({ status: 200, description: 'The process is alive', type: LivenessDto })
  @HttpCode(200)
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: every dependency a request needs answers; 503 otherwise (with which one failed). */
  @Get('readyz')
  @ApiOperation({
    summary: 'Readiness: database, Redis and the object store answer (503 names the failing one)',
    operationId: 'checkReadiness',
    ...PUBLIC,
  })
  @ApiResponse({ status: 200, description: 'Every dependency answers', type: ReadinessDto })
  @ApiResponse({ status: 503, description: 'A dependency is unavailable', type: NotReadyDto })
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
