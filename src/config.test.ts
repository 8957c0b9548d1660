import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('DB_RANDOM_PAGE_COST', () => {
  it('is 1.1 unless set; `server` leaves the server its own; anything else must be a number in range', () => {
    expect(loadConfig({}).dbRandomPageCost).toBe(1.1);
    expect(loadConfig({ DB_RANDOM_PAGE_COST: '2.5' }).dbRandomPageCost).toBe(2.5);
    expect(loadConfig({ DB_RANDOM_PAGE_COST: 'server' }).dbRandomPageCost).toBeNull();
    expect(() => loadConfig({ DB_RANDOM_PAGE_COST: 'fast' })).toThrow(ConfigError);
    expect(() => loadConfig({ DB_RANDOM_PAGE_COST: '0' })).toThrow(/DB_RANDOM_PAGE_COST must be a number from 0.1 to 100/);
  });
});

describe('HEAP_GROWTH_PERCENT', () => {
  it('is 50 on a Postgres server and 30 embedded unless set; `v8` leaves V8 its own; anything else must be a whole number in range', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://db.internal/broker' }).heapGrowthPercent).toBe(50);
    expect(loadConfig({}).heapGrowthPercent).toBe(30);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '50' }).heapGrowthPercent).toBe(50);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '100' }).heapGrowthPercent).toBe(100);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: 'v8' }).heapGrowthPercent).toBeNull();
    expect(() => loadConfig({ HEAP_GROWTH_PERCENT: '5' })).toThrow('HEAP_GROWTH_PERCENT must be an integer from 10 to 300, or v8 (V8\'s own factor), got "5"');
    expect(() => loadConfig({ HEAP_GROWTH_PERCENT: '400' })).toThrow(ConfigError);
    expect(() => loadConfig({ HEAP_GROWTH_PERCENT: 'small' })).toThrow(ConfigError);
  });
});

describe('webhook delivery capacity', () => {
  it('sends 256 at once per instance, 4 per endpoint across the fleet, over 64 sockets per receiving host, unless set', () => {
    expect(loadConfig({}).webhooks).toMatchObject({ maxInFlight: 256, perEndpoint: 4, connectionsPerOrigin: 64 });
    expect(loadConfig({ WEBHOOK_CONNECTIONS_PER_ORIGIN: '8' }).webhooks.connectionsPerOrigin).toBe(8);
    expect(() => loadConfig({ WEBHOOK_CONNECTIONS_PER_ORIGIN: '0' })).toThrow(ConfigError);
  });
});

describe('PARTNER_CONNECTIONS_PER_ORIGIN', () => {
  it('follows the engine global concurrency unless set, so sellers sharing an origin never wait for a socket', () => {
    expect(loadConfig({}).connectionsPerOrigin).toBe(512);
    expect(loadConfig({ ENGINE_GLOBAL_CONCURRENCY: '64' }).connectionsPerOrigin).toBe(64);
    expect(loadConfig({ ENGINE_GLOBAL_CONCURRENCY: '64', PARTNER_CONNECTIONS_PER_ORIGIN: '16' }).connectionsPerOrigin).toBe(16);
    expect(() => loadConfig({ PARTNER_CONNECTIONS_PER_ORIGIN: '0' })).toThrow(ConfigError);
  });
});
