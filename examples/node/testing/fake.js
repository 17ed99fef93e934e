'use strict';
// The fake gateway for `node --test`: a separate program (target/debug's, or
// ENOS_FAKE_GATEWAY), started on a free loopback port.
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const path = require('node:path');

const APP_KEY = 'node-app-key';
const APP_SECRET = 'node-app-secret-77c1';

/** Starts the fake; resolves to `{ url, stop() }`. */
async function startFake() {
  process.env.NO_PROXY = '*';
  const program = process.env.ENOS_FAKE_GATEWAY
    || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'enos-fake-gateway');
  const fake = spawn(program,
    ['--port', '0', '--max-seconds', '300', '--app', `${APP_KEY}:${APP_SECRET}`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: fake.stdout });
  const first = await new Promise((resolve) => lines.once('line', resolve));
  const url = first.replace('enos-fake-gateway listening on ', '');
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  return { url, stop: () => fake.kill() };
}

module.exports = { APP_KEY, APP_SECRET, startFake };
