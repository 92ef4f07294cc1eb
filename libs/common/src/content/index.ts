export * from './type-policy.js';
