// The test controls seen from the official TypeScript SDK (tests/test_test_controls.py runs it).
//
//   FILESAPI_BASE_URL=... node controls.mjs <package>      e.g. node controls.mjs sdk-1.16.0
//
// The server must run with --test-controls and --auth open. Prints one `RESULT <name> <json>` line
// per scenario; the Python test asserts on them.

import { Buffer } from 'node:buffer';

const [pkg] = process.argv.slice(2);
const baseURL = process.env.FILESAPI_BASE_URL;
const sdk = await import(pkg);
const Anthropic = sdk.default;
const { toFile } = sdk;
const headers = { 'x-api-key': 'test-key', 'anthropic-version': '2023-06-01' };

async function admin(method, path, body) {
  const response = await fetch(baseURL + path, {
    method,
    headers: { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response.json();
}

function result(name, value) {
  console.log(`RESULT ${name} ${JSON.stringify(value)}`);
}

async function failure(fn) {
  try {
    await fn();
    return { raised: null };
  } catch (err) {
    return { raised: err.constructor.name, status: err.status ?? null, cause: err.cause?.message ?? err.cause?.code ?? null, message: String(err.message).slice(0, 200) };
  }
}

const client = (options = {}) => new Anthropic({ baseURL, apiKey: 'test-key', ...options });

// 1. default retries ride through two 529s; the journal shows three attempts with the SDK named
await admin('DELETE', '/v1/admin/requests');
await admin('POST', '/v1/admin/faults', { operation: 'upload', status: 529, times: 2 });
const uploaded = await client().files.upload({ file: await toFile(Buffer.from('x'.repeat(100000)), 'big.bin') });
const attempts = (await admin('GET', '/v1/admin/requests?operation=upload')).data.reverse();
result('retries', attempts.map((a) => [a.status, a.sdk?.language, a.sdk?.retry_count]));
await admin('DELETE', '/v1/admin/faults');

// 2. no retries: the typed errors
for (const status of [529, 429, 503]) {
  await admin('POST', '/v1/admin/faults', { operation: 'list', status, times: 1 });
  result(`typed_${status}`, await failure(() => client({ maxRetries: 0 }).files.list()));
}

// 3. a truncated download
await admin('POST', '/v1/admin/faults', { operation: 'download', truncate_after_bytes: 1000, times: 1 });
result('truncated', await failure(async () => {
  const response = await client({ maxRetries: 0 }).files.download(uploaded.id);
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length !== 100000) throw new Error(`short body: ${body.length}`);
}));

// 4. a disconnect
await admin('POST', '/v1/admin/faults', { operation: 'retrieve', disconnect: true, times: 1 });
result('disconnect', await failure(() => client({ maxRetries: 0 }).files.retrieveMetadata(uploaded.id)));

// 5. a delay past the client's timeout
await admin('POST', '/v1/admin/faults', { operation: 'retrieve', delay_ms: 2000, times: 1 });
result('timeout', await failure(() => client({ maxRetries: 0, timeout: 500 }).files.retrieveMetadata(uploaded.id)));
