/** The tamper-evident audit chain (docs/security.md item 33). */

export * from './audit-anchor.js';
export * from './audit-chain.js';
export * from './audit-keyring.js';
