#!/usr/bin/env node
// Prints a fresh TESS master keyring (KEY_PROVIDER=local) to stdout, in the format of DATA_DIR/master.key:
//   {"current": "<id>", "keys": {"<id>": "<base64 of 32 random bytes>"}}
// Usage: node deploy/generate-master-key.mjs > master.key   (then chmod 600, store it as a Secret, back it up)
import { randomBytes, randomUUID } from 'node:crypto';

const id = randomUUID();
process.stdout.write(
  `${JSON.stringify({ current: id, keys: { [id]: randomBytes(32).toString('base64') } }, null, 2)}\n`,
);
