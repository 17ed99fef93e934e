'use strict';
// Get a token, refresh it, handle a gateway error and move files, from Node.js.
// Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET, ENOS_TOKEN_LIB.
// snippet:begin node
const enos = require('enos-token');

const { ENOS_GATEWAY_URL: url, ENOS_APP_KEY: key, ENOS_APP_SECRET: secret } = process.env;
if (!url || !key || !secret) {
  console.error('set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET');
  process.exit(2);
}

async function tokens() {
  const client = new enos.Client(url, key, secret);
  try {
    const token = client.getToken();
    console.log(`token: ${token.accessToken.slice(0, 4)}… expires in ${token.expireS} s`);
    const refreshed = client.refreshToken(token.accessToken);
    console.log(refreshed.accessToken !== token.accessToken ? 'refreshed: new token' : 'refreshed: ?');
    console.log(`access token is current: ${client.accessToken() === refreshed.accessToken}`);
    // One call does it all: signed, sent, a refused token renewed (any EnOS API
    // path); a Promise, so the event loop goes on while the gateway answers.
    const response = await client.request('POST', '/fake/v1/echo?orgId=o1', { json: { k: 'v' } });
    console.log(`request: ${response.status} ${response.json().msg}`);
  } finally {
    client.close();
  }
  try {
    enos.getAccessToken(url, key, 'not-the-secret');
  } catch (error) {
    console.log(`error: ${error.statusName} ${error.serviceStatus} ${error.message}`);
  }
}
// snippet:end node

// snippet:begin node-files
async function moveFiles() {
  const files = new enos.Client(url, key, secret);
  try {
    // A measurement point with its files (multipart; every part carries its Content-Length).
    const upload = await files.request('POST', '/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1', {
      parts: [
        { name: 'enos-message', data: '{"payload":[]}', contentType: 'application/json' },
        { name: 'enos-file', file: __filename }, // streamed from disk
      ],
    });
    console.log(`upload: ${upload.status} ${upload.json().data.parts[1].filename}`);
    // A file written to disk as it arrives (constant memory; resumed if the
    // connection breaks); an AbortSignal would cancel it (here: after 60 s).
    const target = require('node:path').join(require('node:os').tmpdir(), `firmware-${process.pid}.bin`);
    const download = await files.request('GET',
      '/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/3000000.bin',
      { output: target, signal: AbortSignal.timeout(60000) });
    console.log(`download: ${download.status} ${require('node:fs').statSync(target).size} bytes`);
    require('node:fs').unlinkSync(target);
  } finally {
    files.close();
  }
}
// snippet:end node-files

tokens().then(moveFiles).catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
