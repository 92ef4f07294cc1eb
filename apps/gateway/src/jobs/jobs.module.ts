import { Module } from '@nestjs/common';
import { AccessModule } from '../access/access.module.js';
import { JobsController } from './jobs.controller.js';

@Module({ imports: [AccessModule], controllers: [JobsController] })
export class JobsModule {}
