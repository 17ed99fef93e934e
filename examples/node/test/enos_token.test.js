'use strict';
// node --test: a Get, a Refresh and error paths against the fake gateway.
// In a checkout where `cargo build` has run, nothing to set: the library and
// the fake come from target/debug (ENOS_TOKEN_LIB and ENOS_FAKE_GATEWAY override).
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');

const enos = require('../enos_token');
const { APP_KEY, APP_SECRET, startFake } = require('../testing/fake');

let fake;
let url;

before(async () => {
  fake = await startFake();
  url = fake.url;
});

after(() => fake.stop());

test('one-shot Get then Refresh', () => {
  const token = enos.getAccessToken(url, APP_KEY, APP_SECRET);
  assert.ok(token.accessToken.length > 0);
  assert.equal(token.expireS, 7200);
  const refreshed = enos.refreshAccessToken(url, APP_KEY, APP_SECRET, token.accessToken);
  assert.notEqual(refreshed.accessToken, token.accessToken);
  assert.equal(refreshed.expireS, 7200);
});

test('client: Get, Refresh, managed token', () => {
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    const token = client.getToken();
    const refreshed = client.refreshToken(token.accessToken);
    assert.equal(client.accessToken(), refreshed.accessToken);
  } finally {
    client.close();
  }
  assert.throws(() => client.accessToken(), (e) => e.statusName === 'ENOS_ERR_NULL_ARGUMENT');
});

test('shared cache and background refresh', () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'enos-node-shared-'));
  const first = new enos.Client(url, APP_KEY, APP_SECRET,
    { proxy: '', sharedCache: directory, backgroundRefresh: true });
  const second = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '', sharedCache: directory });
  try {
    assert.equal(second.accessToken(), first.accessToken());
  } finally {
    first.close();
    second.close();
  }
  fs.chmodSync(directory, 0o777);
  assert.throws(() => new enos.Client(url, APP_KEY, APP_SECRET, { sharedCache: directory }),
    (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
  fs.rmSync(directory, { recursive: true });
});

test('auth headers, invalidate, counters, options, logging and signing', () => {
  const lines = [];
  const client = new enos.Client(url, APP_KEY, APP_SECRET, {
    proxy: '', refreshMarginS: 60, retries: { maxRetries: 1, baseBackoffMs: 5 },
    log: (level, message) => lines.push([level, message]),
  });
  try {
    const token = client.accessToken();
    const headers = client.authHeaders('b=2&a=1', '{"k":"v"}');
    assert.equal(headers['apim-accesstoken'], token);
    assert.match(headers['apim-signature'], /^[0-9a-f]{64}$/);
    assert.equal(headers['apim-signature'], enos.signRequest(token, 'b=2&a=1', '{"k":"v"}',
      Number(headers['apim-timestamp']), APP_SECRET));
    client.invalidate(token);
    client.accessToken();
    const counters = client.counters();
    assert.equal(counters.getRequests, 2);
    assert.ok(counters.cacheHits >= 1);
    assert.ok(lines.some(([level, m]) => level === 3 && m.startsWith('Get succeeded')), lines);
    assert.ok(lines.every(([, m]) => !m.includes(token)), 'no token in the log');
  } finally {
    client.close();
  }
  assert.throws(() => new enos.Client(url, APP_KEY, APP_SECRET,
    { log: () => {}, backgroundRefresh: true }), (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
  assert.throws(() => new enos.Client(url, APP_KEY, APP_SECRET, { caFile: '/nonexistent.pem' }),
    (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
  // An independent vector: sha256("tok" + "a1b2" + "17" + "s3cr3t").
  const crypto = require('node:crypto');
  const expected = crypto.createHash('sha256').update('toka1b217s3cr3t').digest('hex');
  assert.equal(enos.signRequest('tok', 'b=2&a=1', '', 17, 's3cr3t'), expected);
});

test('wrong secret: a gateway error with its codes, without the secret', () => {
  assert.throws(() => enos.getAccessToken(url, APP_KEY, 'wrong-secret-9'), (error) => {
    assert.ok(error instanceof enos.EnosError);
    assert.equal(error.statusName, 'ENOS_ERR_SERVICE');
    assert.equal(error.serviceStatus, 1003);
    assert.equal(error.httpStatus, 200);
    assert.match(error.message, /^gateway status 1003/);
    assert.ok(!error.message.includes('wrong-secret-9'));
    return true;
  });
});

test('refused connection and bad arguments', async () => {
  const port = await new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
  assert.throws(() => enos.getAccessToken(`http://127.0.0.1:${port}`, APP_KEY, APP_SECRET),
    (e) => e.statusName === 'ENOS_ERR_CONNECT' && e.message === `connect to 127.0.0.1:${port} refused`);
  assert.throws(() => enos.getAccessToken(url, '', APP_SECRET),
    (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT' && e.message === 'app key is empty');
  assert.throws(() => enos.refreshAccessToken(url, APP_KEY, APP_SECRET, 'never-issued'),
    (e) => e.statusName === 'ENOS_ERR_SERVICE' && e.serviceStatus === 1204);
});

test('request: a signed API call, a retired token renewed', async () => {
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  const sibling = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    const pending = client.request('POST', '/fake/v1/echo?orgId=o1', { json: { k: 'v' } });
    assert.ok(pending instanceof Promise);
    const response = await pending;
    assert.equal(response.status, 200);
    const data = response.json().data;
    assert.equal(data.body, '{"k":"v"}');
    assert.equal(data.query, 'orgId=o1');
    assert.equal(data.contentType, 'application/json;charset=UTF-8');
    assert.equal(response.headers['content-type'], 'application/json;charset=UTF-8');
    assert.ok(response.text().includes('signature ok'));
    assert.equal((await client.request('GET', '/no/such/api')).status, 404);
    sibling.refreshToken(client.accessToken()); // retires the client's token
    assert.equal(client.requestSync('GET', '/fake/v1/echo').status, 200);
    const counters = client.counters();
    assert.equal(counters.apiCalls, 3);
    assert.equal(counters.tokenRenewals, 1);
    await assert.rejects(client.request('GET', '//elsewhere.example/x'),
      (error) => error.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
    assert.throws(() => client.requestSync('GET', '//elsewhere.example/x'),
      (error) => error.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
  } finally {
    client.close();
    sibling.close();
  }
});

test('version', () => {
  assert.match(enos.version(), /^\d+\.\d+\.\d+/);
});

/** GET or POST the fake's control API (the fake runs as a separate program). */
function control(path, body) {
  return new Promise((resolve, reject) => {
    const http = require('node:http');
    const payload = body === undefined ? '' : JSON.stringify(body);
    const request = http.request(`${url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'Content-Length': Buffer.byteLength(payload) },
    }, (answer) => {
      const chunks = [];
      answer.on('data', (chunk) => chunks.push(chunk));
      answer.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    });
    request.on('error', reject);
    request.end(payload);
  });
}

const MEASUREPOINTS = '/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1';
const downloadPath = (size) => `/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/${size}.bin`;
const sha256 = (bytes) => require('node:crypto').createHash('sha256').update(bytes).digest('hex');

function scratch() {
  const os = require('node:os');
  return require('node:fs').mkdtempSync(require('node:path').join(os.tmpdir(), 'enos-node-'));
}

test('files: a measurement point with a JSON part and two file parts arrives intact', async () => {
  const fsm = require('node:fs');
  const dir = scratch();
  const csv = require('node:path').join(dir, 'readings.csv');
  fsm.writeFileSync(csv, 't,v\n'.repeat(40000));
  const photo = Buffer.alloc(300000, 7);
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    // Sent in flight: the in-memory part is read and progress reported from
    // a library thread, through koffi, on the event loop.
    const reports = [];
    const response = await client.request('POST', MEASUREPOINTS, {
      parts: [
        { name: 'enos-message', data: '{"payload":[]}', contentType: 'application/json' },
        { name: 'enos-file', file: csv },
        { name: 'enos-file', data: photo, filename: 'camera.jpg', contentType: 'image/jpeg' },
      ],
      onProgress: (...report) => reports.push(report),
    });
    assert.equal(response.status, 200, response.text());
    const parts = response.json().data.parts;
    assert.deepEqual(parts.map((p) => p.name), ['enos-message', 'enos-file', 'enos-file']);
    assert.equal(parts[1].filename, 'readings.csv');
    assert.equal(parts[1].sha256, sha256(fsm.readFileSync(csv)));
    assert.equal(parts[2].filename, 'camera.jpg');
    assert.equal(parts[2].sha256, sha256(photo));
    const [sent, sendTotal] = reports[reports.length - 1];
    assert.equal(sent, sendTotal);
  } finally {
    client.close();
    fsm.rmSync(dir, { recursive: true });
  }
});

test('files: a 50 MiB download to a path and to an fd is exact; a cut one resumes', async () => {
  const fsm = require('node:fs');
  const dir = scratch();
  const size = 50 * 1024 * 1024;
  const { sha256: expected } = await control(`/fake/control/file-digest?fileUri=enos-connect://fake/${size}.bin`);
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    const target = require('node:path').join(dir, 'out.bin');
    const response = await client.request('GET', downloadPath(size), { output: target });
    assert.equal(response.status, 200);
    assert.equal(response.body.length, 0);
    assert.equal(sha256(fsm.readFileSync(target)), expected);

    await control('/fake/control/fault', { fault: 'cut-download', bytes: 1024 * 1024 });
    const before = (await control('/fake/control/stats')).rangeRequests;
    const fd = fsm.openSync(require('node:path').join(dir, 'fd.bin'), 'w');
    const resumed = client.requestSync('GET', downloadPath(size), { output: fd });
    fsm.closeSync(fd);
    assert.equal(resumed.attempts, 2);
    assert.equal(sha256(fsm.readFileSync(require('node:path').join(dir, 'fd.bin'))), expected);
    assert.equal((await control('/fake/control/stats')).rangeRequests, before + 1);
  } finally {
    client.close();
    fsm.rmSync(dir, { recursive: true });
  }
});

test('files: bad headers, missing files and mixed bodies are refused by name', async () => {
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '' });
  try {
    await assert.rejects(client.request('GET', '/fake/v1/echo', { headers: { 'apim-signature': 'x' } }),
      (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT' && e.message.includes('apim-signature'));
    await assert.rejects(client.request('POST', MEASUREPOINTS,
      { parts: [{ name: 'enos-file', file: '/nonexistent/fw.bin' }] }),
    (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT' && e.message.includes('/nonexistent/fw.bin'));
    assert.throws(() => client.requestSync('POST', MEASUREPOINTS, { json: {}, parts: [] }),
      (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT');
    await assert.rejects(client.request('GET', downloadPath(10), { output: 987654 }),
      (e) => e.statusName === 'ENOS_ERR_INVALID_ARGUMENT' && e.message.includes('987654'));
    assert.equal((await client.request('GET', '/fake/v1/echo')).status, 200, 'the client goes on');
  } finally {
    client.close();
  }
});

test('retries: an outage is retried and the response says so', async () => {
  await control('/fake/control/outage', { status: 503, times: 2 });
  const client = new enos.Client(url, APP_KEY, APP_SECRET, { proxy: '', retries: { maxRetries: 2, baseBackoffMs: 5 } });
  try {
    const response = await client.request('GET', '/fake/v1/echo');
    assert.equal(response.status, 200);
    assert.equal(response.attempts, 3);
    assert.equal(response.requestId, null);
    assert.equal(client.counters().apiRetries, 2);
    const upload = await client.request('POST', MEASUREPOINTS,
      { parts: [{ name: 'enos-message', data: '{}', contentType: 'application/json' }] });
    assert.match(upload.requestId, /^fake-/);
  } finally {
    client.close();
  }
});
