import { type DynamicModule, Module } from '@nestjs/common';
import { DatabaseModule, type TessConfig, TessConfigModule } from '#common';

/** The crypto worker: an application context with no public HTTP server. */
@Module({})
export class WorkerModule {
  static forRoot(config: TessConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [TessConfigModule.forRoot(config), DatabaseModule.forRoot()],
    };
  }
}
