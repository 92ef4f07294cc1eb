import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class UsageDto {
  @ApiProperty({ description: 'Plaintext bytes of your files that are not failed' }) bytes!: number;
  @ApiProperty({ description: 'Your files that are not failed' }) files!: number;
  @ApiPropertyOptional({ description: 'QUOTA_BYTES, when the operator set one' }) quotaBytes?: number;
  @ApiPropertyOptional({ description: 'QUOTA_FILES, when the operator set one' }) quotaFiles?: number;
}
