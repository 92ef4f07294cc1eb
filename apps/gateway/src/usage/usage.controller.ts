import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { ApiAuth } from '../http/openapi.js';
import { UsageDto } from './usage.dto.js';
import { type StorageUsage, UsageService } from './usage.service.js';

@ApiTags('usage')
@ApiAuth()
@Controller('api/v1/usage')
@UseGuards(ApiAuthGuard)
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  @ApiOperation({
    summary: 'Your storage use, against your quotas when they are set',
    operationId: 'getUsage',
  })
  @ApiResponse({ status: 200, type: UsageDto })
  async get(@CurrentPrincipal() principal: UserPrincipal): Promise<StorageUsage> {
    return this.usage.of(principal.userId);
  }
}
