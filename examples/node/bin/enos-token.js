#!/usr/bin/env node
'use strict';
// The enos-token command line that the package carries (native/enos-token).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const program = path.join(__dirname, '..', 'native', 'enos-token');
const result = spawnSync(program, process.argv.slice(2), { stdio: 'inherit' });
if (result.error) {
  console.error(`enos-token: cannot run ${program}: ${result.error.message}`);
  process.exit(3);
}
process.exit(result.status === null ? 1 : result.status);
