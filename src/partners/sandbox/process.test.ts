import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxProcess, startSandboxProcess } from '../../../test/support/sandbox.js';
import { validateSellerInput } from '../seller-config.js';

describe('sandbox fleet as a separate process', () => {
  let sandbox: SandboxProcess;

  beforeAll(async () => {
    sandbox = await startSandboxProcess({ seed: 3, latencyScale: 0 });
  });

  afterAll(async () => {
    await sandbox?.stop();
  });

  it('prints its sellers, serves quotes and reports stats and the ledger over HTTP', async () => {
    expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sandbox.sellers).toHaveLength(8);
    for (const seller of sandbox.sellers) expect(validateSellerInput(seller, { sellerUrls: 'any' }).ok).toBe(true);

    const flat = sandbox.sellers.find((s) => s.quote.method === 'GET')!;
    const headers = flat.headers as Record<string, string>;
    const quote = await fetch(`${flat.baseUrl}/quote?isbn=9780141439518&title=&author=&condition=any`, { headers });
    expect([200, 404]).toContain(quote.status);
    const key = flat.baseUrl.split('/').pop()!;

    const stats = await sandbox.stats();
    expect(stats[key]).toMatchObject({ quote: 1, order: 0, orderStatus: 0 });
    expect(await sandbox.ledger(key)).toEqual([]);

    await sandbox.configure(key, { script: [{ endpoint: 'quote', fault: 'error500' }] });
    const failed = await fetch(`${flat.baseUrl}/quote?isbn=9780141439518&title=&author=&condition=any`, { headers });
    expect(failed.status).toBe(500);
    expect((await sandbox.stats())[key]!.byStatus['500']).toBe(1);

    await sandbox.setInventory(key, '9780141439518', 2);
    const restocked = await fetch(`${flat.baseUrl}/quote?isbn=9780141439518&title=&author=&condition=any`, { headers });
    expect(((await restocked.json()) as { stock: number }).stock).toBe(2);

    await sandbox.reset();
    expect((await sandbox.stats())[key]).toEqual({ quote: 0, order: 0, orderStatus: 0, byStatus: {}, callbacksSent: 0, callbacksFailed: 0 });
    await expect(sandbox.configure('nobody', { down: true })).rejects.toThrow(/404/);
  });

  it('exits when stopped', async () => {
    const other = await startSandboxProcess({ latencyScale: 0 });
    await other.stop();
    expect(() => process.kill(other.pid, 0)).toThrow();
    await expect(fetch(`${other.url}/_admin/stats`)).rejects.toThrow();
  });
});
