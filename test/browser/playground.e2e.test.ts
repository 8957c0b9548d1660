import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, pageErrors, screenshot } from '../support/browser.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The playground as a first-time user meets it, in a real browser: paste a token, run Create
 * (twice: two requests, no idempotency key to edit), run Watch with no id to paste, see the
 * request change live; and with no or a bad token, a readable line at once on both transports.
 * The engine is off so the request waits in PENDING until this test changes it, as another
 * client would: the live update is the test's to cause, not a race with the engine.
 */

// What the functions handed to page.evaluate use: they run in the page (no DOM types here).
declare const document: any;
declare const localStorage: any;
declare const sessionStorage: any;
declare function requestAnimationFrame(callback: () => void): number;

const CANCEL = `mutation Cancel($id: ID!) { cancelPurchaseRequest(id: $id) { purchaseRequest { status } userErrors { code } } }`;
const NOT_SIGNED_IN = 'Not signed in: paste a token printed at start-up into the Headers tab, as Authorization: Bearer <token>';
/** Much less than the ~45 s graphql-ws used to spend retrying a refused socket. */
const AT_ONCE_MS = 10_000;

let server: TestServer;
let browser: Browser;
beforeAll(async () => {
  [server, browser] = await Promise.all([startTestServer(), launchBrowser()]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** A fresh browser profile with `headers` in the Headers tab (GraphiQL reads them from localStorage). */
async function openPlayground(headers: Record<string, string>): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext();
  // The broker has no favicon: its 404 would read as a page error below.
  await context.route('**/favicon.ico', (route) => route.fulfill({ status: 204 }));
  await context.addInitScript((text) => {
    // Once per profile: a reload keeps whatever the page stored since.
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem('graphiql:headers', text);
      sessionStorage.setItem('seeded', '1');
    }
  }, JSON.stringify(headers));
  const page = await context.newPage();
  const errors = pageErrors(page);
  await page.goto(`${server.url}/`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  return { page, context, errors };
}

/** Runs the operation named `name` the way a user does: cursor in it, Ctrl+Enter. */
async function run(page: Page, name: string): Promise<void> {
  const found = await page.evaluate((op) => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
    const lines: string[] = cm.getValue().split('\n');
    const line = lines.findIndex((l) => new RegExp(`^(query|mutation|subscription) ${op}\\b`).test(l));
    if (line < 0) return false;
    cm.focus();
    cm.setCursor({ line: line + 1, ch: 2 });
    return true;
  }, name);
  expect(found, `operation ${name} in the default query`).toBe(true);
  await page.keyboard.press('Control+Enter');
}

const paneText = () => document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() ?? '';

/** Waits until the result pane holds JSON for which `holds` is true: re-read each time the pane changes. */
async function resultWhen(page: Page, what: string, holds: (r: any) => boolean, timeoutMs = 15_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    text = await page.evaluate(paneText);
    try {
      const parsed = JSON.parse(text);
      if (holds(parsed)) return parsed;
    } catch {
      // Not JSON yet (empty while the first answer is on its way).
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`the result pane never showed ${what}; last: ${text}`);
    // Until the pane changes (checked every frame, in the page) or the deadline passes.
    await page.evaluate(
      ({ before, ms }) =>
        new Promise<void>((resolve) => {
          const end = Date.now() + ms;
          const read = () => document.querySelector('.result-window .CodeMirror')?.CodeMirror.getValue() ?? '';
          const tick = () => (read() !== before || Date.now() > end ? resolve() : requestAnimationFrame(tick));
          tick();
        }),
      { before: text, ms: left },
    );
  }
}

describe('the playground', () => {
  it('signed in: Create makes a new request each run, Watch follows the last one live', async () => {
    const { page, context, errors } = await openPlayground({ Authorization: `Bearer ${server.tokens.alice}` });
    try {
      await run(page, 'Create');
      const first = await resultWhen(page, 'a created request', (r) => Boolean(r.data?.createPurchaseRequest?.purchaseRequest?.id));
      expect(first.data.createPurchaseRequest.userErrors).toEqual([]);
      expect(first.extensions.playground.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);

      // The same text run again is a second request: the page made a new key.
      await run(page, 'Create');
      const second = await resultWhen(
        page,
        'a second request',
        (r) => Boolean(r.data?.createPurchaseRequest?.purchaseRequest?.id) && r.data.createPurchaseRequest.purchaseRequest.id !== first.data.createPurchaseRequest.purchaseRequest.id,
      );
      expect(second.data.createPurchaseRequest.userErrors).toEqual([]);
      expect(second.extensions.playground.idempotencyKey).not.toBe(first.extensions.playground.idempotencyKey);
      const id: string = second.data.createPurchaseRequest.purchaseRequest.id;
      await screenshot(page, 'playground-created');

      // Watch with nothing pasted: the page supplies the request Create made last.
      await run(page, 'Watch');
      const pending = await resultWhen(page, 'the request PENDING', (r) => r.data?.purchaseRequestUpdated?.status === 'PENDING');
      expect(pending.data.purchaseRequestUpdated.id).toBe(id);
      expect(pending.extensions.playground.id).toBe(id);

      // Another client changes it; the change arrives in the pane by itself.
      const canceled = await server.gql(CANCEL, { id });
      expect(canceled.data.cancelPurchaseRequest.userErrors).toEqual([]);
      const live = await resultWhen(page, 'the request CANCELED', (r) => r.data?.purchaseRequestUpdated?.status === 'CANCELED');
      expect(live.data.purchaseRequestUpdated.revision).toBeGreaterThan(pending.data.purchaseRequestUpdated.revision);
      expect(live.data.purchaseRequestUpdated.events.map((e: any) => e.status)).toEqual(['PENDING', 'CANCELED']);
      await screenshot(page, 'playground-watch-live');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('no token: Create and Watch each say how to sign in, at once', async () => {
    const { page, context } = await openPlayground({});
    try {
      await run(page, 'Create');
      const http = await resultWhen(page, 'the sign-in message', (r) => Array.isArray(r.errors) && 'data' in r, AT_ONCE_MS);
      expect(http.errors).toEqual([{ message: `${NOT_SIGNED_IN}.`, extensions: { code: 'UNAUTHENTICATED' } }]);
      await screenshot(page, 'playground-no-token-http');

      await page.evaluate((id) => localStorage.setItem('broker:lastRequestId', id), await anyRequestId());
      await run(page, 'Watch');
      const ws = await resultWhen(page, 'the sign-in message', (r) => Array.isArray(r.errors) && !('data' in r), AT_ONCE_MS);
      expect(ws.errors).toEqual([{ message: `${NOT_SIGNED_IN}.`, extensions: { code: 'UNAUTHENTICATED' } }]);
      await screenshot(page, 'playground-no-token-ws');
    } finally {
      await context.close();
    }
  }, 60_000);

  it('a bad token: both transports say it was refused, at once', async () => {
    const { page, context } = await openPlayground({ Authorization: 'Bearer not.a.token' });
    try {
      await page.evaluate((id) => localStorage.setItem('broker:lastRequestId', id), await anyRequestId());
      await run(page, 'Watch');
      const ws = await resultWhen(page, 'the refusal', (r) => Array.isArray(r.errors), AT_ONCE_MS);
      expect(ws.errors).toHaveLength(1);
      expect(ws.errors[0].message).toMatch(/^Not signed in: the broker refused the token in the Headers tab .*paste a token printed at start-up/);
      await screenshot(page, 'playground-bad-token-ws');

      await run(page, 'Create');
      // Over HTTP the answer also carries the server's `data: null`.
      const http = await resultWhen(page, 'the refusal', (r) => Array.isArray(r.errors) && 'data' in r, AT_ONCE_MS);
      expect(http.errors).toEqual(ws.errors);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('Watch before any Create says what to do instead of failing on a missing $id', async () => {
    const { page, context } = await openPlayground({ Authorization: `Bearer ${server.tokens.bob}` });
    try {
      await run(page, 'Watch');
      const r = await resultWhen(page, 'the hint', (x) => Array.isArray(x.errors), AT_ONCE_MS);
      expect(r.errors[0].message).toMatch(/^No request to use as \$id yet: run Create first/);
    } finally {
      await context.close();
    }
  }, 60_000);
});

/** Any request's id: a refused Watch must be refused for its token, not for a missing id. */
async function anyRequestId(): Promise<string> {
  const res = await server.gql(`mutation { createPurchaseRequest(input: {
    idempotencyKey: "browser-${Math.random()}", book: { isbn: "9780141439518" }, maxTotalPrice: { cents: 4500, currency: "USD" },
    expiresAt: "${new Date(Date.now() + 3_600_000).toISOString()}",
    shippingAddress: { name: "A", line1: "1 Main St", city: "S", postalCode: "12345", country: "US" }, paymentToken: "tok_visa" }) { purchaseRequest { id } } }`);
  return res.data.createPurchaseRequest.purchaseRequest.id;
}
