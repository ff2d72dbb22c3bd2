// tidewatch --mcp driven by the official MCP TypeScript SDK (Client + StdioClientTransport):
// initialize, tools/list, a subscribe/poll loop across a restart of Tidewatch (every change
// exactly once), resources/subscribe, unsubscribe. The writer is the sqlite3 program.
//   node sdk_client.mjs /path/to/tidewatch
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  LATEST_PROTOCOL_VERSION,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const binary = process.argv[2] ?? process.env.TIDEWATCH_BINARY;
assert.ok(binary, 'usage: node sdk_client.mjs /path/to/tidewatch');
const dir = mkdtempSync(join(tmpdir(), 'tidewatch-mcp-'));
const db = join(dir, 'shop.sqlite');
const journal = join(dir, 'journal.sqlite');
const sqlite = (sql) => execFileSync('sqlite3', ['-bail', db, sql]);
sqlite('PRAGMA journal_mode=WAL; CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);');

// Generous: the machine that runs this may be busy building.
const WAIT_MS = 60000;

async function start() {
  const transport = new StdioClientTransport({
    command: binary,
    args: ['--mcp', '--journal', journal, '--source', `sqlite:${db}`, '--watch', 'items'],
    env: { ...process.env, TIDEWATCH_DATA_DIR: join(dir, 'data') },
    stderr: 'pipe',
  });
  // Ready once the watch reports its baseline: changes from then on are reported.
  let log = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready; log:\n${log}`)), WAIT_MS);
    transport.stderr.on('data', (chunk) => {
      log += chunk;
      process.stderr.write(chunk);
      if (log.includes('ready: main.items')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const client = new Client({ name: 'tidewatch-test', version: '1.0.0' });
  await client.connect(transport);
  await ready;
  return client;
}

// Polls until `count` changes arrived (or WAIT_MS), returning them and the last token.
async function collect(client, subscription, token, count) {
  const changes = [];
  const deadline = Date.now() + WAIT_MS;
  while (changes.length < count && Date.now() < deadline) {
    const args = { subscription_id: subscription, timeout: 5 };
    if (token) args.poll_token = token;
    const result = await client.callTool({ name: 'poll_changes', arguments: args });
    assert.ok(!result.isError, JSON.stringify(result));
    const out = result.structuredContent;
    assert.equal(out.subscription_active, true);
    assert.equal(typeof out.poll_token, 'string');
    changes.push(...out.changes);
    token = out.poll_token;
    assert.ok(out.changes.length <= 2, 'batch_size 2 bounds a poll');
  }
  return { changes, token };
}

const ids = (changes) => changes.map((c) => Number(c.resource_id));

let client = await start();
assert.equal(client.getServerVersion().name, 'tidewatch');
console.log(`negotiated with ${LATEST_PROTOCOL_VERSION} offered`);
await client.ping();

const { tools } = await client.listTools();
const names = tools.map((t) => t.name);
for (const name of [
  'subscribe_changes', 'poll_changes', 'unsubscribe', 'get_subscriptions',
  'list_sources', 'list_namespaces', 'watch', 'unwatch',
])
  assert.ok(names.includes(name), `tools/list has ${name}: ${names}`);
for (const tool of tools) {
  assert.equal(tool.inputSchema.type, 'object');
  assert.equal(tool.outputSchema.type, 'object');
}

const subscribed = await client.callTool({
  name: 'subscribe_changes',
  arguments: {
    resource_type: 'documents',
    filters: { collection_id: 'items' },
    options: { batch_size: 2, include_data: true },
  },
});
const subscription = subscribed.structuredContent.subscription_id;
let token = subscribed.structuredContent.poll_token;
assert.ok(subscription);

// Resources: the watched table is one; subscribing to it brings updated notifications.
const { resources } = await client.listResources();
const items = resources.find((r) => r.uri.endsWith('main.items'));
assert.ok(items, JSON.stringify(resources));
let updates = 0;
const updated = new Promise((resolve) => {
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    if (n.params.uri === items.uri && ++updates === 1) resolve();
  });
});
await client.subscribeResource({ uri: items.uri });

for (let i = 1; i <= 5; ++i) sqlite(`INSERT INTO items(id, name) VALUES(${i}, 'item ${i}');`);
let got = await collect(client, subscription, token, 5);
assert.deepEqual(ids(got.changes), [1, 2, 3, 4, 5]);
for (const change of got.changes) {
  assert.equal(change.type, 'created');
  assert.equal(change.resource_type, 'document');
  assert.equal(change.new_data.name, `item ${change.resource_id}`);
  assert.equal(change.old_data, null);
  assert.ok(change.version > 0);
  assert.equal(change.event.operationType, 'insert');
}
token = got.token;
await updated;
const read = await client.readResource({ uri: items.uri });
assert.equal(JSON.parse(read.contents[0].text).events.length, 5);

// Restart: the subscription is in the journal, and the token goes on from where it was.
await client.close();
client = await start();
const listed = await client.callTool({ name: 'get_subscriptions', arguments: {} });
assert.ok(listed.structuredContent.subscriptions.some((s) => s.subscription_id === subscription));
const nothing = await client.callTool({
  name: 'poll_changes',
  arguments: { subscription_id: subscription, poll_token: token },
});
assert.deepEqual(nothing.structuredContent.changes, [], 'no change is given twice');

sqlite(`INSERT INTO items(id, name) VALUES(6, 'item 6'); UPDATE items SET name = 'renamed' WHERE id = 2;`);
sqlite(`DELETE FROM items WHERE id = 3;`);
got = await collect(client, subscription, token, 3);
assert.deepEqual(
  got.changes.map((c) => `${c.type}:${c.resource_id}`).sort(),
  ['created:6', 'deleted:3', 'updated:2'],
);
token = got.token;

// Bad input is an error that names the problem, and the server goes on.
await assert.rejects(
  client.callTool({ name: 'poll_changes', arguments: { subscription_id: subscription, poll_token: 'junk' } }),
  /poll_token/,
);
await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), /unknown tool/);

// Run-time control: a table made now is listed, watched and unwatched.
sqlite('CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT);');
const sources = (await client.callTool({ name: 'list_sources', arguments: {} })).structuredContent.sources;
assert.deepEqual(sources.map((s) => s.id), ['shop']);
const namespaces = (await client.callTool({ name: 'list_namespaces', arguments: { source: 'shop' } }))
  .structuredContent.namespaces;
assert.ok(namespaces.some((n) => n.ns.endsWith('notes') && !n.watched), JSON.stringify(namespaces));
const watched = await client.callTool({ name: 'watch', arguments: { source: 'shop', namespace: 'notes' } });
assert.equal(watched.structuredContent.live, true, JSON.stringify(watched));
assert.ok((await client.listResources()).resources.some((r) => r.uri.endsWith('main.notes')));
const unwatched = await client.callTool({ name: 'unwatch', arguments: { source: 'shop', namespace: 'notes' } });
assert.equal(unwatched.structuredContent.unwatched, true);
await assert.rejects(
  client.callTool({ name: 'watch', arguments: { source: 'shop', namespace: 'no_such_table' } }),
  /watch:/,
);

const cancelled = await client.callTool({ name: 'unsubscribe', arguments: { subscription_id: subscription } });
assert.equal(cancelled.structuredContent.cancelled, true);
await assert.rejects(
  client.callTool({ name: 'poll_changes', arguments: { subscription_id: subscription } }),
  /no subscription/,
);
await client.close();
rmSync(dir, { recursive: true, force: true });
console.log('sdk_client: 1 passed, 0 failed');
