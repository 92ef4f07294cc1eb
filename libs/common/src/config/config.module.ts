import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { TessConfig } from './config.schema.js';

/** Injection token for the validated {@link TessConfig}. */
export const TESS_CONFIG = Symbol('TESS_CONFIG');

/** Makes the config built once at startup injectable everywhere (`@Inject(TESS_CONFIG)`). */
@Global()
@Module({})
export class TessConfigModule {
  static forRoot(config: TessConfig): DynamicModule {
    return {
      module: TessConfigModule,
      providers: [{ provide: TESS_CONFIG, useValue: config }],
      exports: [TESS_CONFIG],
    };
  }
}
