import { type DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TESS_CONFIG } from '../config/config.module.js';
import type { TessConfig } from '../config/config.schema.js';
import { dataSourceOptions } from './data-source.js';
import {
  ApiTokenRepository,
  AuditRepository,
  FileRepository,
  MfaRepository,
  PasswordResetTokenRepository,
  UserRepository,
} from './repositories/index.js';

const REPOSITORIES = [
  UserRepository,
  FileRepository,
  ApiTokenRepository,
  AuditRepository,
  PasswordResetTokenRepository,
  MfaRepository,
];

/** TypeORM on PostgreSQL plus the repository classes services use (services never touch the driver). */
@Global()
@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [TESS_CONFIG],
          useFactory: (config: TessConfig) => ({ ...dataSourceOptions(config), retryAttempts: 0 }),
        }),
      ],
      providers: REPOSITORIES,
      exports: REPOSITORIES,
    };
  }
}
