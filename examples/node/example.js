'use strict';
// Get a token, refresh it, and handle a gateway error, from Node.js.
// Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET, ENOS_TOKEN_LIB.
// snippet:begin node
const enos = require('enos-token');

const { ENOS_GATEWAY_URL: url, ENOS_APP_KEY: key, ENOS_APP_SECRET: secret } = process.env;
const client = new enos.Client(url, key, secret);
try {
  const token = client.getToken();
  console.log(`token: ${token.accessToken.slice(0, 4)}… expires in ${token.expireS} s`);
  const refreshed = client.refreshToken(token.accessToken);
  console.log(refreshed.accessToken !== token.accessToken ? 'refreshed: new token' : 'refreshed: ?');
  console.log(`access token is current: ${client.accessToken() === refreshed.accessToken}`);
  // One call does it all: signed, sent, a refused token renewed (any EnOS API path).
  const response = client.request('POST', '/fake/v1/echo?orgId=o1', { json: { k: 'v' } });
  console.log(`request: ${response.status} ${response.json().msg}`);
} finally {
  client.close();
}
try {
  enos.getAccessToken(url, key, 'not-the-secret');
} catch (error) {
  console.log(`error: ${error.statusName} ${error.serviceStatus} ${error.message}`);
}
// snippet:end node
