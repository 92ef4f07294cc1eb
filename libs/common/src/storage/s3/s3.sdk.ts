import { lazyModule } from '../../util/lazy-module.js';

/** `@aws-sdk/client-s3`, loaded when the first S3 store is built (never with STORAGE_DRIVER=local). */
export const s3Sdk = lazyModule<typeof import('@aws-sdk/client-s3')>('@aws-sdk/client-s3');
