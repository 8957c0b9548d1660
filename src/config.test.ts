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
