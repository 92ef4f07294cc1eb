import { Module } from '@nestjs/common';
import { AccessPolicy } from './access.policy.js';

/** The access policy every route that touches a file by id asks. */
@Module({ providers: [AccessPolicy], exports: [AccessPolicy] })
export class AccessModule {}
