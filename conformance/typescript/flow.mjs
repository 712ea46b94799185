// The conformance flow for the official TypeScript SDK (@anthropic-ai/sdk), any pinned version.
//
//   node flow.mjs <package> <dialect>      e.g. node flow.mjs sdk-1.16.0 ga
//
// <package> is one of the aliases in package.json (each a pinned @anthropic-ai/sdk version);
// <dialect> is `ga` (client.files) or `beta` (client.beta.files). The server comes from
// FILESAPI_BASE_URL and a valid key from FILESAPI_API_KEY; the workspace must start empty.
// Prints `SDK ...` once, then one `RESULT <operation> PASS|FAIL <detail>` line per operation.
// Exit status: 0 every operation passed, 1 one failed, 2 bad usage.

import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [pkg, dialect] = process.argv.slice(2);
const baseURL = process.env.FILESAPI_BASE_URL;
const apiKey = process.env.FILESAPI_API_KEY;
if (!pkg || !['ga', 'beta'].includes(dialect) || !baseURL || !apiKey) {
  console.error('usage: FILESAPI_BASE_URL=... FILESAPI_API_KEY=... node flow.mjs <sdk-package> ga|beta');
  process.exit(2);
}

const manifest = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
const version = JSON.parse(fs.readFileSync(manifest, 'utf8')).version;
const sdk = await import(pkg);
const Anthropic = sdk.default;
const { toFile, NotFoundError, BadRequestError, AuthenticationError, APIError } = sdk;

const UNKNOWN_ID = 'file_011CNha8iCJcU1wXNR6q4V8w';
const PDF = Buffer.from('%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n');
const PAGE = 10;
const TOTAL = 25;

const client = new Anthropic({ apiKey, baseURL, maxRetries: 0, timeout: 60_000 });
const files = dialect === 'ga' ? client.files : client.beta.files;
console.log(`SDK typescript ${version} ${dialect} (${pkg}, node ${process.version})`);

// -- reporting

class CheckFailed extends Error {}
function check(cond, message) {
  if (!cond) throw new CheckFailed(message);
}
const results = [];
function oneLine(text) {
  return String(text).replace(/\s+/g, ' ').slice(0, 600);
}
function report(op, ok, detail) {
  results.push(ok);
  console.log(`RESULT ${op} ${ok ? 'PASS' : 'FAIL'} ${oneLine(detail)}`);
}
async function op(name, fn) {
  try {
    report(name, true, (await fn()) ?? 'ok');
  } catch (err) {
    if (err instanceof CheckFailed) report(name, false, err.message);
    else if (err instanceof APIError)
      report(name, false, `unexpected ${err.constructor.name} ${err.status}: ${JSON.stringify(err.error)}`);
    else report(name, false, `unexpected ${err?.stack ?? err}`);
  }
}

// -- helpers

const alive = []; // ids this program created and has not deleted, oldest first
const short = (ids) => '[' + ids.map((i) => i.slice(-6)).join(', ') + ']';
const newestFirst = () => [...alive].reverse();
const sameJSON = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
function sorted(obj) {
  if (Array.isArray(obj)) return obj.map(sorted);
  if (obj && typeof obj === 'object')
    return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, sorted(obj[k])]));
  return obj;
}

async function upload(file, extra = {}) {
  const meta = await files.upload({ file, ...extra });
  alive.push(meta.id);
  return meta;
}

function checkMeta(meta, what, { filenames, mime, data }) {
  check(meta.type === 'file', `${what}: type ${meta.type}`);
  check(/^file_01[1-9A-HJ-NP-Za-km-z]{22}$/.test(meta.id), `${what}: id ${meta.id}`);
  check(filenames.includes(meta.filename), `${what}: filename ${JSON.stringify(meta.filename)}, expected one of ${JSON.stringify(filenames)}`);
  check(meta.mime_type === mime, `${what}: mime_type ${meta.mime_type}, expected ${mime}`);
  check(meta.size_bytes === data.length, `${what}: size_bytes ${meta.size_bytes}, expected ${data.length}`);
  check(meta.downloadable === true, `${what}: downloadable ${meta.downloadable}`);
  const created = new Date(meta.created_at);
  check(Math.abs(Date.now() - created.getTime()) < 120_000, `${what}: created_at ${meta.created_at} is not about now`);
  return `${meta.filename} (${meta.mime_type}, ${meta.size_bytes} B)`;
}

async function downloadBytes(id) {
  const response = await files.download(id);
  return { data: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type') || '' };
}

async function expectError(cls, status, errorType, call, what) {
  try {
    await call();
  } catch (err) {
    check(err instanceof APIError, `${what}: expected ${cls.name}, got ${err?.constructor?.name}: ${err}`);
    check(err.constructor === cls, `${what}: expected exactly ${cls.name}, got ${err.constructor.name} (${err.status})`);
    check(err.status === status, `${what}: status ${err.status}, expected ${status}`);
    const body = err.error;
    check(body && body.type === 'error', `${what}: error body ${JSON.stringify(body)}`);
    check(body.error?.type === errorType, `${what}: error.type ${body.error?.type}, expected ${errorType}`);
    check(typeof body.error?.message === 'string' && body.error.message, `${what}: no error.message`);
    const rid = err.requestID ?? err.headers?.get?.('request-id');
    check(typeof rid === 'string' && rid.startsWith('req_'), `${what}: request id ${rid}`);
    return `${cls.name} ${status} ${errorType}`;
  }
  throw new CheckFailed(`${what}: expected ${cls.name}, but the call succeeded`);
}

// -- the flow

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'filesapi-ts-'));
const made = {};
let cursorStyle = null;

try {
  const first = await files.list({ limit: 1000 });
  check(first.data.length === 0, `workspace not empty: ${first.data.length} files`);
  cursorStyle = 'first_id' in first || 'has_more' in first ? 'after_id' : 'page';
  console.log(`# cursor style: ${cursorStyle}`);
} catch (err) {
  report('setup', false, err instanceof CheckFailed ? err.message : `${err}`);
  process.exit(1);
}

await op('upload_bytes', async () => {
  const meta = await upload(await toFile(PDF));
  made.bytes = { meta, data: PDF };
  // Newer SDKs send no filename (stored as unnamed + extension); older ones name the part unknown_file.
  return checkMeta(meta, 'toFile(Buffer) without a name', {
    filenames: ['unnamed.pdf', 'unknown_file'],
    mime: 'application/pdf',
    data: PDF,
  });
});

await op('upload_path', async () => {
  const data = Buffer.from('# Notes\n\nUploaded from a path on disk.\n');
  const p = path.join(tmp, 'notes.md');
  fs.writeFileSync(p, data);
  const meta = await upload(fs.createReadStream(p));
  made.path = { meta, data };
  return checkMeta(meta, 'fs.createReadStream(path)', { filenames: ['notes.md'], mime: 'text/markdown', data });
});

await op('upload_named', async () => {
  const data = Buffer.from('{"answer": 42, "text": "caf\u00e9"}');
  const meta = await upload(await toFile(data, 'data.json', { type: 'application/json' }));
  made.named = { meta, data };
  const big = Buffer.concat([Buffer.from('\x00\x01BIN'), randomBytes(1_500_000)]);
  const bigMeta = await upload(await toFile(big, 'blob.bin', { type: 'application/octet-stream' }));
  made.big = { meta: bigMeta, data: big };
  return (
    checkMeta(meta, "toFile(data, 'data.json', {type})", { filenames: ['data.json'], mime: 'application/json', data }) +
    '; ' +
    checkMeta(bigMeta, "toFile(1.5 MB, 'blob.bin')", { filenames: ['blob.bin'], mime: 'application/octet-stream', data: big })
  );
});

await op('metadata', async () => {
  const kinds = Object.keys(made);
  check(kinds.length > 0, 'no upload succeeded');
  for (const kind of kinds) {
    const again = await files.retrieveMetadata(made[kind].meta.id);
    check(sameJSON(again, made[kind].meta), `retrieveMetadata(${kind}) ${JSON.stringify(again)} != upload ${JSON.stringify(made[kind].meta)}`);
  }
  return `retrieveMetadata equals the upload response for ${kinds.join(', ')}`;
});

await op('download', async () => {
  const kinds = Object.keys(made);
  check(kinds.length > 0, 'no upload succeeded');
  for (const kind of kinds) {
    const { data, type } = await downloadBytes(made[kind].meta.id);
    check(data.equals(made[kind].data), `download(${kind}): ${data.length} bytes differ from the ${made[kind].data.length} sent`);
    check(type.split(';')[0] === made[kind].meta.mime_type, `download(${kind}): content-type ${type}`);
  }
  return `byte-identical: ${kinds.map((k) => `${k} ${made[k].data.length} B`).join(', ')}`;
});

await op('list_autopage', async () => {
  for (let i = alive.length; i < TOTAL; i++) await upload(await toFile(Buffer.from(`file ${i}`), `page-${i}.txt`, { type: 'text/plain' }));
  const want = newestFirst();
  const seen = [];
  let lastCreated = Infinity;
  for await (const f of files.list({ limit: PAGE })) {
    seen.push(f.id);
    const t = new Date(f.created_at).getTime();
    check(t <= lastCreated, `created_at not newest first at ${f.id}`);
    lastCreated = t;
    check(seen.length <= 3 * TOTAL, 'auto-pagination does not end');
  }
  check(new Set(seen).size === seen.length, `a file came twice: ${short(seen)}`);
  check(JSON.stringify(seen) === JSON.stringify(want), `for await over list({limit: ${PAGE}}) gave ${seen.length} files ${short(seen)}, expected ${want.length} newest first ${short(want)}`);
  return `${seen.length} files over pages of ${PAGE}, each once, newest first`;
});

await op('list_manual', async () => {
  const want = newestFirst();
  check(want.length === TOTAL, `expected ${TOTAL} files to page over, have ${want.length}`);
  const pages = [];
  if (cursorStyle === 'after_id') {
    let page = await files.list({ limit: PAGE });
    for (;;) {
      pages.push(page);
      check(typeof page.has_more === 'boolean', `has_more ${page.has_more}`);
      const ids = page.data.map((f) => f.id);
      check(page.first_id === (ids[0] ?? null) && page.last_id === (ids.at(-1) ?? null), `first_id/last_id ${page.first_id}/${page.last_id} do not match the page`);
      if (!page.has_more) break;
      check(pages.length < 10, 'has_more never ends');
      page = await files.list({ limit: PAGE, after_id: page.last_id });
    }
    const got = pages.map((p) => p.data.map((f) => f.id));
    check(JSON.stringify(got) === JSON.stringify([want.slice(0, 10), want.slice(10, 20), want.slice(20)]), `after_id paging gave pages of ${got.map((p) => p.length)}: ${got.map(short)}`);
    const back = await files.list({ limit: PAGE, before_id: pages[2].first_id });
    check(JSON.stringify(back.data.map((f) => f.id)) === JSON.stringify(want.slice(10, 20)) && back.has_more === true, `before_id=first_id of page 3 gave ${short(back.data.map((f) => f.id))} has_more=${back.has_more}`);
    return `after_id=last_id: pages [10, 10, 5], has_more true, true, false; before_id=first_id goes back a page`;
  }
  let page = await files.list({ limit: PAGE });
  for (;;) {
    pages.push(page);
    if (!page.next_page) break;
    check(page.next_page.startsWith('page_'), `next_page ${page.next_page} does not start with page_`);
    check(pages.length < 10, 'next_page never ends');
    page = await files.list({ limit: PAGE, page: page.next_page });
  }
  check(!page.hasNextPage(), 'the last page says hasNextPage()');
  const got = pages.map((p) => p.data.map((f) => f.id));
  check(JSON.stringify(got) === JSON.stringify([want.slice(0, 10), want.slice(10, 20), want.slice(20)]), `page=next_page paging gave pages of ${got.map((p) => p.length)}: ${got.map(short)}`);
  return 'page=next_page: pages [10, 10, 5], next_page null on the last';
});

if (cursorStyle === 'page') {
  await op('list_ids', async () => {
    const [a, b] = alive;
    const page = await files.list({ ids: [a, UNKNOWN_ID, b, a] });
    const got = page.data.map((f) => f.id).sort();
    check(JSON.stringify(got) === JSON.stringify([a, b].sort()), `list({ids: [a, unknown, b, a]}) gave ${short(got)}`);
    check(!page.next_page && !page.hasNextPage(), 'list({ids}) is not a single page');
    return 'ids=[a, unknown, b, a] -> a and b once each, one page';
  });

  await op('expires_in_seconds', async () => {
    const meta = await upload(await toFile(Buffer.from('expires'), 'expiring.txt', { type: 'text/plain' }), { expires_in_seconds: 3600 });
    check(meta.expires_at, `expires_at is ${meta.expires_at}`);
    const delta = new Date(meta.expires_at) - new Date(meta.created_at);
    check(delta === 3_600_000, `expires_at - created_at = ${delta} ms, expected 3600 s`);
    const again = await files.retrieveMetadata(meta.id);
    check(again.expires_at === meta.expires_at, `retrieveMetadata expires_at ${again.expires_at}`);
    const plain = await files.retrieveMetadata(alive[0]);
    check(plain.expires_at === null, `a file uploaded without expiry has expires_at ${plain.expires_at}`);
    await expectError(BadRequestError, 400, 'invalid_request_error',
      async () => upload(await toFile(Buffer.from('x'), 'x.txt'), { expires_in_seconds: 59 }), 'expires_in_seconds: 59');
    return 'expires_at = created_at + 3600 s; null without; 59 -> BadRequestError';
  });
}

await op('error_404', async () => {
  const d = [];
  d.push(await expectError(NotFoundError, 404, 'not_found_error', () => files.retrieveMetadata(UNKNOWN_ID), 'retrieveMetadata(unknown)'));
  await expectError(NotFoundError, 404, 'not_found_error', () => files.download(UNKNOWN_ID), 'download(unknown)');
  await expectError(NotFoundError, 404, 'not_found_error', () => files.delete(UNKNOWN_ID), 'delete(unknown)');
  await expectError(NotFoundError, 404, 'not_found_error', () => files.retrieveMetadata('nonsense'), "retrieveMetadata('nonsense')");
  return `${d[0]} on retrieveMetadata, download, delete of an unknown id`;
});

await op('error_400', async () => {
  const d = await expectError(BadRequestError, 400, 'invalid_request_error', () => files.list({ limit: 0 }), 'list({limit: 0})');
  await expectError(BadRequestError, 400, 'invalid_request_error', () => files.list({ limit: 1001 }), 'list({limit: 1001})');
  if (cursorStyle === 'page')
    await expectError(BadRequestError, 400, 'invalid_request_error', () => files.list({ page: 'page_not-a-cursor' }), 'list({page: bogus})');
  return `${d} for limit 0 and 1001${cursorStyle === 'page' ? ' and a bogus page cursor' : ''}`;
});

await op('error_401', async () => {
  const bad = new Anthropic({ apiKey: 'sk-fapi-not-a-real-key', baseURL, maxRetries: 0, timeout: 60_000 });
  const badFiles = dialect === 'ga' ? bad.files : bad.beta.files;
  const d = await expectError(AuthenticationError, 401, 'authentication_error', () => badFiles.list(), 'list with an unknown key');
  await expectError(AuthenticationError, 401, 'authentication_error', () => badFiles.retrieveMetadata(alive[0] ?? UNKNOWN_ID), 'retrieveMetadata with an unknown key');
  return `${d} for an unknown key`;
});

await op('delete', async () => {
  check(alive.length > 0, 'nothing to delete');
  const n = alive.length;
  for (const id of [...alive]) {
    const deleted = await files.delete(id);
    check(deleted.id === id && deleted.type === 'file_deleted', `delete(${id}) answered ${JSON.stringify(deleted)}`);
    alive.splice(alive.indexOf(id), 1);
  }
  const gone = made.named?.meta.id ?? made.bytes?.meta.id;
  if (gone) await expectError(NotFoundError, 404, 'not_found_error', () => files.retrieveMetadata(gone), 'retrieveMetadata after delete');
  const left = await files.list({ limit: 1000 });
  check(left.data.length === 0, `${left.data.length} files still listed after deleting all`);
  return `${n} files deleted ({id, type: file_deleted}); then NotFoundError; list empty`;
});

fs.rmSync(tmp, { recursive: true, force: true });
process.exit(results.every(Boolean) ? 0 : 1);
