import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { type ViteDevServer, createServer } from 'vite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchBrowser, pageErrors, screenshot } from '../support/browser.js';
import { type TestServer, eventually, startTestServer } from '../support/server.js';
import { FAST_ENGINE_ENV } from '../support/world.js';

/**
 * The web example (examples/web) in a real browser, served as `npm run web` serves it — Vite's
 * dev server, proxying /graphql (HTTP and WebSocket) to a broker — against a broker with its
 * engine and the sandbox fleet, started with TRUSTED_DOCUMENTS set to the example's generated
 * manifest: the shipped app works under the safelist, sending its operations by id.
 */

const WEB_ROOT = fileURLToPath(new URL('../../examples/web/', import.meta.url));
const MANIFEST = `${WEB_ROOT}src/gql/persisted-documents.json`;
/** Sandbox books (seed 1): the first is ordered within $50; nobody carries the second (out of print). */
const AFFORDABLE = '9780141439518';
const OUT_OF_PRINT = '9780679722762';
const OUTCOME_TIMEOUT_MS = 60_000;

let broker: TestServer;
let vite: ViteDevServer;
let browser: Browser;
let appUrl: string;

beforeAll(async () => {
  broker = await startTestServer({
    ...FAST_ENGINE_ENV,
    SANDBOX: 'on',
    // Slow enough that a request visibly passes through its states, fast enough for a test.
    SANDBOX_LATENCY_SCALE: '0.2',
    TRUSTED_DOCUMENTS: MANIFEST,
  });
  vite = await serveApp(broker.url);
  appUrl = vite.resolvedUrls!.local[0]!;
  browser = await launchBrowser();
});

/** `npm run web`: the example's own Vite config, its /graphql proxy pointed at `brokerUrl`. */
async function serveApp(brokerUrl: string): Promise<ViteDevServer> {
  const server = await createServer({
    configFile: `${WEB_ROOT}vite.config.ts`,
    logLevel: 'silent',
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, watch: null, proxy: { '/graphql': { target: brokerUrl, ws: true } } },
  });
  await server.listen();
  return server;
}

afterAll(async () => {
  await browser?.close();
  await vite?.close();
  await broker?.close();
});

/** What the page sent to /graphql over HTTP, parsed. */
function graphqlBodies(page: Page): Array<Record<string, unknown>> {
  const bodies: Array<Record<string, unknown>> = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/graphql' && request.method() === 'POST') bodies.push(JSON.parse(request.postData() ?? '{}') as Record<string, unknown>);
  });
  return bodies;
}

/** The text of every message the page received on its WebSockets to /graphql. */
function socketFrames(page: Page): string[] {
  const frames: string[] = [];
  page.on('websocket', (socket) => {
    if (new URL(socket.url()).pathname !== '/graphql') return;
    socket.on('framereceived', ({ payload }) => frames.push(typeof payload === 'string' ? payload : payload.toString('utf8')));
  });
  return frames;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function createRequest(page: Page, isbn: string, maxPrice: string): Promise<void> {
  await page.getByLabel('ISBN').fill(isbn);
  await page.getByLabel('Max price (USD)').fill(maxPrice);
  await page.getByRole('button', { name: 'Create request' }).click();
  await page.getByRole('listitem', { name: `Request for ${isbn}` }).waitFor();
}

/** Waits until the page shows the request for `isbn` with `status`; fails with what it shows. */
async function untilStatus(page: Page, isbn: string, status: string, errors: string[]): Promise<void> {
  const item = page.getByRole('listitem', { name: `Request for ${isbn}` });
  try {
    await item.getByTestId('status').getByText(status, { exact: true }).waitFor({ timeout: OUTCOME_TIMEOUT_MS });
  } catch (e) {
    const shown = await item.innerText().catch(() => '(not shown)');
    const alert = await page.getByRole('alert').innerText().catch(() => '');
    throw new Error(`the request for ${isbn} did not show ${status}; it shows:\n${shown}\nalert: ${alert}\npage errors: ${errors.join('\n')}`, { cause: e });
  }
}

it('refuses a bad token at once with a readable message', async () => {
  const page = await browser.newPage();
  const errors = pageErrors(page);
  try {
    await page.goto(appUrl);
    await signIn(page, 'not-a-token');
    await page.getByRole('alert').getByText(/That token was refused/).waitFor();
    expect(await page.getByRole('heading', { name: 'New request' }).isVisible()).toBe(false);
    await screenshot(page, 'web-example-bad-token');
    expect(errors).toEqual([]);
  } finally {
    await page.close();
  }
});

it('signs in with a token, creates two requests and shows both reaching their outcome live', { timeout: 3 * OUTCOME_TIMEOUT_MS }, async () => {
  const page = await browser.newPage();
  const errors = pageErrors(page);
  const sent = graphqlBodies(page);
  const frames = socketFrames(page);
  try {
    await page.goto(appUrl);
    await signIn(page, broker.tokens.alice);
    await page.getByRole('status').getByText('Signed in.').waitFor();
    await screenshot(page, 'web-example-signed-in');

    await createRequest(page, AFFORDABLE, '50.00');
    await createRequest(page, OUT_OF_PRINT, '45.00');
    await screenshot(page, 'web-example-created');

    await untilStatus(page, AFFORDABLE, 'ORDERED', errors);
    await untilStatus(page, OUT_OF_PRINT, 'OUT_OF_STOCK', errors);
    await screenshot(page, 'web-example-outcomes');

    const ordered = page.getByRole('listitem', { name: `Request for ${AFFORDABLE}` });
    await expect(ordered.getByTestId('summary').innerText()).resolves.toMatch(/^Ordered from .+ for \$\d+\.\d\d \(order [A-Z]+-/);
    const orderedEvents = await ordered.getByRole('list', { name: 'Events' }).getByRole('listitem').allInnerTexts();
    expect(orderedEvents.some((e) => e.includes('CREATED'))).toBe(true);
    expect(orderedEvents.at(-1)).toContain('ORDERED');
    const outOfStock = page.getByRole('listitem', { name: `Request for ${OUT_OF_PRINT}` });
    const lastEvent = (await outOfStock.getByRole('list', { name: 'Events' }).getByRole('listitem').allInnerTexts()).at(-1);
    expect(lastEvent).toMatch(/OUT_OF_STOCK — None of the \d+ sellers has the book/);

    // Live: the outcomes came over graphql-ws (the page never polls; creating answers PENDING).
    const outcomes = frames.map((f) => JSON.parse(f) as { type: string; payload?: any }).filter((m) => m.type === 'next');
    const statuses = outcomes.map((m) => m.payload?.data?.purchaseRequestUpdated?.status);
    expect(statuses).toContain('ORDERED');
    expect(statuses).toContain('OUT_OF_STOCK');

    // Shipped the way a mobile app ships: every operation by id, never its text.
    expect(sent.length).toBeGreaterThanOrEqual(3);
    for (const body of sent) {
      expect(body).not.toHaveProperty('query');
      expect(body).toMatchObject({ extensions: { persistedQuery: { version: 1, sha256Hash: expect.stringMatching(/^[0-9a-f]{64}$/) } } });
    }
    // No error on the page (an empty alert is hidden, so it has no role to find).
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(errors).toEqual([]);
  } finally {
    await page.close();
  }
});

it('works against a broker without TRUSTED_DOCUMENTS too (npm start): told the ids are unknown, it sends the text', { timeout: 3 * OUTCOME_TIMEOUT_MS }, async () => {
  // No engine: the request stays PENDING, which is all this needs to show.
  const plain = await startTestServer();
  const devApp = await serveApp(plain.url);
  const page = await browser.newPage();
  const errors = pageErrors(page);
  const sent = graphqlBodies(page);
  const frames = socketFrames(page);
  try {
    await page.goto(devApp.resolvedUrls!.local[0]!);
    await signIn(page, plain.tokens.alice);
    await page.getByRole('status').getByText('Signed in.').waitFor();
    await createRequest(page, AFFORDABLE, '50.00');
    await untilStatus(page, AFFORDABLE, 'PENDING', errors);
    const events = page.getByRole('listitem', { name: `Request for ${AFFORDABLE}` }).getByRole('list', { name: 'Events' }).getByRole('listitem');
    await expect(events.allInnerTexts()).resolves.toEqual([expect.stringContaining('CREATED')]);
    // The subscription, sent as text too, streams the request's state.
    const streamed = (f: string) => (JSON.parse(f) as { type: string; payload?: any }).payload?.data?.purchaseRequestUpdated?.status === 'PENDING';
    await eventually(async () => frames.some(streamed));
    // The first operation went by id and was answered PERSISTED_QUERY_NOT_FOUND; the rest by text.
    expect(sent[0]).toHaveProperty('extensions.persistedQuery');
    expect(sent.slice(1).map((b) => typeof b.query)).toEqual(['string', 'string']);
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(errors).toEqual([]);
  } finally {
    await page.close();
    await devApp.close();
    await plain.close();
  }
});
