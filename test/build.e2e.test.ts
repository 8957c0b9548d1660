import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain ES module of the build's, without type declarations
import { buildServer } from '../scripts/build.mjs';
import { type BrokerProcess, startBrokerProcess } from './support/broker-process.js';
import { CREATE, IN_PRINT_BOOKS, createInput } from './support/fixtures.js';
import { eventually, freshDatabase } from './support/server.js';

/**
 * `npm start` runs the server built by scripts/build.mjs (src/ transpiled file for file into
 * dist/), not the source under tsx. Built here into a folder of its own beside dist/, so the
 * build is checked whatever a developer's dist/ holds: the server it makes starts on a fresh
 * database (embedded: a data directory copied from the install's template; or Postgres), serves
 * the playground's packaged assets and the schema, and buys a book from its sandbox.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUT = `.build-test-${process.pid}`;
let broker: BrokerProcess | null = null;
let database: Awaited<ReturnType<typeof freshDatabase>> | null = null;

beforeAll(async () => {
  await buildServer({ outdir: OUT });
  database = await freshDatabase();
}, 60_000);

afterAll(async () => {
  await broker?.kill();
  await database?.drop();
  rmSync(join(ROOT, OUT), { recursive: true, force: true });
});

describe('the built server (npm start)', () => {
  it('holds every module but the tests, and the files the server reads', () => {
    const files = readdirSync(join(ROOT, OUT), { recursive: true }).map(String);
    expect(files).toContain('main.js');
    expect(files.filter((f) => f.endsWith('.test.js'))).toEqual([]);
    for (const asset of ['schema/requests.graphql', 'db/migrations/meta/_journal.json']) expect(existsSync(join(ROOT, OUT, asset))).toBe(true);
  });

  it('refuses an output folder other than dist or .build-<name> directly in the repository', async () => {
    for (const outdir of ['.', '..', 'src', '/tmp/x', 'dist/x']) await expect(buildServer({ outdir })).rejects.toThrow(/output folder must be dist or \.build-<name>/);
  });

  it('starts on a fresh database, serves the playground, and orders a book from its sandbox', async () => {
    broker = await startBrokerProcess({ ...database!.env, SANDBOX: 'on', SANDBOX_LATENCY_SCALE: '0' }, `${OUT}/main.js`);
    const asset = await fetch(`${broker.url}/playground/graphiql.min.js`);
    expect(asset.status).toBe(200);
    expect((await asset.text()).length).toBeGreaterThan(100_000);

    const created = await broker.gql(CREATE, { input: createInput({ book: { isbn: IN_PRINT_BOOKS[0] }, maxTotalPrice: { cents: 10_000, currency: 'USD' } }) });
    expect(created.errors).toBeUndefined();
    const id = created.data.createPurchaseRequest.purchaseRequest.id as string;
    const status = await eventually(async () => {
      const r = await broker!.gql(`query($id: ID!) { purchaseRequest(id: $id) { status } }`, { id });
      const s = r.data?.purchaseRequest?.status as string | undefined;
      return s && s !== 'PENDING' && s !== 'SEARCHING' && s !== 'ORDERING' ? s : null;
    });
    expect(status).toBe('ORDERED');
  }, 120_000);
});
