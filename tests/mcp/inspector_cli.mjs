// The MCP Inspector's CLI mode lists tidewatch --mcp's tools and calls one, from an MCP
// client config file like the one the README shows.
//   node inspector_cli.mjs /path/to/tidewatch
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const binary = process.argv[2] ?? process.env.TIDEWATCH_BINARY;
assert.ok(binary, 'usage: node inspector_cli.mjs /path/to/tidewatch');
const dir = mkdtempSync(join(tmpdir(), 'tidewatch-inspector-'));
const db = join(dir, 'shop.sqlite');
execFileSync('sqlite3', ['-bail', db, 'CREATE TABLE orders(id INTEGER PRIMARY KEY, status TEXT);']);
const config = join(dir, 'mcp.json');
writeFileSync(
  config,
  JSON.stringify({
    mcpServers: {
      tidewatch: {
        command: binary,
        args: ['--mcp', '--journal', join(dir, 'journal.sqlite'), '--source', `sqlite:${db}`, '--watch', 'orders'],
        env: { TIDEWATCH_DATA_DIR: join(dir, 'data') },
      },
    },
  }),
);
const require = createRequire(import.meta.url);
const inspector = join(dirname(require.resolve('@modelcontextprotocol/inspector/package.json')), 'cli/build/cli.js');
const run = (...args) =>
  JSON.parse(
    execFileSync(process.execPath, [inspector, '--cli', '--config', config, '--server', 'tidewatch', ...args], {
      timeout: 60000,
      encoding: 'utf8',
    }),
  );

const { tools } = run('--method', 'tools/list');
const names = tools.map((t) => t.name);
for (const name of ['subscribe_changes', 'poll_changes', 'unsubscribe', 'get_subscriptions'])
  assert.ok(names.includes(name), `the inspector lists ${name}: ${names}`);
const listed = run('--method', 'tools/call', '--tool-name', 'get_subscriptions');
assert.equal(listed.structuredContent.total_count, 0);
const { resources } = run('--method', 'resources/list');
assert.ok(resources.some((r) => r.uri.endsWith('main.orders')));
rmSync(dir, { recursive: true, force: true });
console.log(`inspector_cli: ${tools.length} tools listed; 1 passed, 0 failed`);
