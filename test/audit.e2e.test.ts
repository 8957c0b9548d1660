import { type AuditResult, serverAudits } from 'graphql-http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestServer, startTestServer } from './support/server.js';

/**
 * The GraphQL-over-HTTP conformance audits of the `graphql-http` package, run against the real
 * server (introspection on: some audits query `__type`). Every MUST passes; each SHOULD or MAY
 * the server does not follow is listed here with why, so a new one fails until it is explained.
 */

const EXPLAINED_WARNINGS: Record<string, string> = {
  // SHOULD (warn): a request the server cannot run is a client error whatever the client accepts.
  // Apollo Server answers 400 for parse, validation and variable-coercion failures on both media
  // types; the spec keeps 200 for application/json only for legacy clients. Deliberate.
  '572B': 'document parsing failure → 400, not 200, under Accept: application/json (Apollo: 4xx for every request error)',
  FDE2: 'document validation failure → 400, not 200, under Accept: application/json (as above)',
  '7B9B': 'variable coercion failure → 400, not 200, under Accept: application/json (as above)',
  // MAY (notice): CSRF prevention refuses a GET without a preflight-forcing header; the auditor
  // sends plain GETs. Clients that use GET send `apollo-require-preflight: true`.
  '5A70': 'plain GET refused by CSRF prevention (needs apollo-require-preflight)',
  D6D5: 'plain GET with variables refused by CSRF prevention (needs apollo-require-preflight)',
  '6A70': 'plain GET with variables refused by CSRF prevention (needs apollo-require-preflight)',
};

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ INTROSPECTION: 'true' });
});
afterAll(async () => {
  await s?.close();
});

it('passes every graphql-http server audit that is a requirement, and every warning is explained', async () => {
  const audits = serverAudits({ url: `${s.url}/graphql`, fetchFn: fetch });
  const results: AuditResult[] = [];
  for (const audit of audits) results.push(await audit.fn());

  const failed = results.filter((r) => r.status !== 'ok');
  const summary = (r: AuditResult) => (r.status === 'ok' ? `${r.id} ok` : `${r.status} ${r.id} ${r.name}: ${r.reason}`);
  // Printed so the report shows what the server does not follow, with the auditor's reasons.
  console.log(`graphql-http audits: ${results.length - failed.length}/${results.length} ok\n${failed.map(summary).join('\n')}`);

  expect(results.length).toBeGreaterThan(30);
  expect(results.filter((r) => r.status === 'error').map(summary)).toEqual([]);
  const unexplained = failed.filter((r) => !(r.id in EXPLAINED_WARNINGS));
  expect(unexplained.map(summary)).toEqual([]);
});
