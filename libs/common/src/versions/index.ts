export { type VersionRemoval, VersionRemover } from './version-remover.js';
