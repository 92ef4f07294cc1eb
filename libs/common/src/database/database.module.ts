import { type DynamicModule, Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { type AuditKeyring, auditKeyringFromConfig } from '../audit/audit-keyring.js';
import { TESS_CONFIG } from '../config/config.module.js';
import type { TessConfig } from '../config/config.schema.js';
import { KEY_PROVIDER } from '../infra/storage.module.js';
import { dataSourceOptions } from './data-source.js';
import {
  AdminUserRepository,
  ApiTokenRepository,
  AuditRepository,
  FileRepository,
  FileVersionRepository,
  FolderRepository,
  InviteRepository,
  MfaRepository,
  PasswordResetTokenRepository,
  ShareRepository,
  UserRepository,
} from './repositories/index.js';

const REPOSITORIES = [
  UserRepository,
  FileRepository,
  FileVersionRepository,
  ApiTokenRepository,
  PasswordResetTokenRepository,
  ShareRepository,
  MfaRepository,
  AdminUserRepository,
  InviteRepository,
  FolderRepository,
];

/** The audit keyring (HMAC keys of the chain), released with the app. */
export const AUDIT_KEYRING = Symbol('AUDIT_KEYRING');

/** TypeORM on PostgreSQL plus the repository classes services use (services never touch the driver). */
@Global()
@Module({})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(AUDIT_KEYRING) private readonly keyring: AuditKeyring) {}

  onApplicationShutdown(): Promise<void> {
    return this.keyring.close();
  }

  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [TESS_CONFIG],
          useFactory: (config: TessConfig) => ({ ...dataSourceOptions(config), retryAttempts: 0 }),
        }),
      ],
      providers: [
        ...REPOSITORIES,
        { provide: AUDIT_KEYRING, inject: [TESS_CONFIG, KEY_PROVIDER], useFactory: auditKeyringFromConfig },
        {
          provide: AuditRepository,
          inject: [DataSource, AUDIT_KEYRING],
          useFactory: (dataSource: DataSource, keyring: AuditKeyring) =>
            new AuditRepository(dataSource, keyring),
        },
      ],
      exports: [...REPOSITORIES, AuditRepository, AUDIT_KEYRING],
    };
  }
}
