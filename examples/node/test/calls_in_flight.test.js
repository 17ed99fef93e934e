'use strict';
// node --test: request() returns a Promise and never blocks the event loop;
// an AbortSignal cancels; close() cancels what is in flight; a pending call
// keeps the process alive. Against the fake gateway's 100 ms (or 10 s) echo.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');

const enos = require('../enos_token');
const { APP_KEY, APP_SECRET, startFake } = require('../testing/fake');

let fake;
let url;

before(async () => {
  fake = await startFake();
  url = fake.url;
});

after(() => fake.stop());

const ECHO_100_MS = '/fake/v1/echo?delayMs=100';
const ECHO_10_S = '/fake/v1/echo?delayMs=10000';

/** Runs `work()` while a 1 ms timer measures the event loop's lag; resolves to its p99 (ms). */
async function lagWhile(work) {
  const lags = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(now - last - 1);
    last = now;
  }, 1);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  lags.sort((a, b) => a - b);
  return lags[Math.floor(lags.length * 0.99)];
}

const milliseconds = (x) => `${(x * 1000).toFixed(0)} ms`;

test('200 calls of 100 ms at once: within a second, the event loop never waits', async () => {
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  let took = 0;
  let p99 = 0;
  try {
    client.accessToken();
    p99 = await lagWhile(async () => {
      const started = performance.now();
      const responses = await Promise.all(Array.from({ length: 200 }, () => client.request('GET', ECHO_100_MS)));
      took = (performance.now() - started) / 1000;
      assert.ok(responses.every((response) => response.status === 200));
    });
    assert.ok(took <= 1, `200 calls took ${milliseconds(took)}`);
    assert.ok(p99 <= 10, `event-loop lag p99 ${p99.toFixed(1)} ms`);
    assert.equal(client.counters().apiCalls, 200);
  } finally {
    client.close(); // its 64 pooled connections too: the fake serves 256 at once
  }

  // The same calls through Node's own fetch (signed with authHeaders), in
  // the same run; not a bound, a comparison the test reports.
  const signer = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    let fetchTook = 0;
    const fetchP99 = await lagWhile(async () => {
      const started = performance.now();
      const statuses = await Promise.all(Array.from({ length: 200 }, async () => {
        const answer = await fetch(`${url}${ECHO_100_MS}`, { headers: signer.authHeaders('delayMs=100') });
        await answer.arrayBuffer();
        return answer.status;
      }));
      fetchTook = (performance.now() - started) / 1000;
      assert.ok(statuses.every((status) => status === 200));
    });
    console.log(`# 200 calls of 100 ms: enos-token ${milliseconds(took)} (lag p99 ${p99.toFixed(1)} ms, `
      + `64 in flight), fetch ${milliseconds(fetchTook)} (lag p99 ${fetchP99.toFixed(1)} ms, 200 in flight)`);
  } finally {
    signer.close();
  }
});

test('an AbortSignal cancels a running call within 50 ms; the client goes on', async () => {
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    client.accessToken();
    const controller = new AbortController();
    const pending = client.request('GET', ECHO_10_S, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the request is on the wire
    const aborted = performance.now();
    controller.abort();
    await assert.rejects(pending, (error) => {
      assert.ok(error instanceof enos.EnosError);
      assert.equal(error.statusName, 'ENOS_ERR_CANCELLED');
      assert.match(error.message, /cancelled after its request was sent/);
      assert.equal(error.cause, controller.signal.reason);
      return true;
    });
    const took = performance.now() - aborted;
    assert.ok(took <= 50, `cancel took ${took.toFixed(1)} ms`);
    assert.equal((await client.request('GET', '/fake/v1/echo')).status, 200);
  } finally {
    client.close();
  }
});

test('an aborted signal starts nothing; a POST cancelled in flight may have been processed', async () => {
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    client.accessToken();
    const before = client.counters().apiCalls;
    await assert.rejects(client.request('GET', '/fake/v1/echo', { signal: AbortSignal.abort() }),
      (error) => error.statusName === 'ENOS_ERR_CANCELLED');
    assert.equal(client.counters().apiCalls, before, 'never sent');
    const controller = new AbortController();
    const post = client.request('POST', ECHO_10_S, { json: { k: 1 }, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(post, (error) => /the server may have processed it/.test(error.message));
  } finally {
    client.close();
  }
});

test('close() cancels the calls in flight, queued and running; a closed client starts none', async () => {
  const lines = [];
  const client = new enos.Client(url, APP_KEY, APP_SECRET, {
    proxy: '', maxConcurrentCalls: 2, log: (level, message) => lines.push(message),
  });
  client.accessToken();
  const calls = Array.from({ length: 5 }, () => client.request('GET', ECHO_10_S));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = performance.now();
  client.close();
  const outcomes = await Promise.allSettled(calls);
  assert.ok(performance.now() - closed < 1000);
  assert.deepEqual(outcomes.map((outcome) => outcome.reason && outcome.reason.statusName),
    Array(5).fill('ENOS_ERR_CANCELLED'));
  await assert.rejects(client.request('GET', '/fake/v1/echo'), (error) => error.statusName === 'ENOS_ERR_NULL_ARGUMENT');
  assert.throws(() => new enos.Client(url, APP_KEY, APP_SECRET, { maxConcurrentCalls: 0 }),
    (error) => error.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
});

test('a call in flight keeps the process alive until it is done', () => {
  const script = `
    const enos = require(${JSON.stringify(require.resolve('../enos_token'))});
    const client = new enos.Client(${JSON.stringify(url)}, '${APP_KEY}', '${APP_SECRET}', { proxy: '' });
    client.request('GET', '${ECHO_100_MS}').then((response) => {
      console.log('status', response.status);
      client.close();
    });`;
  const output = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(output, 'status 200\n');
});
