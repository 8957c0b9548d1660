import { describe, expect, it } from 'vitest';
import type { LookupAddress } from 'node:dns';
import { isPublicAddress, publicOnlyLookup } from './ssrf.js';

const resolver = (answers: Record<string, LookupAddress[]>) => (host: string, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) =>
  setImmediate(() => (answers[host] ? cb(null, answers[host]!) : cb(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), [])));

function lookupOnce(lookup: ReturnType<typeof publicOnlyLookup>, host: string): Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }> {
  return new Promise((resolve) => (lookup as any)(host, {}, (err: NodeJS.ErrnoException | null, address: unknown, family?: number) => resolve({ err, address, family })));
}

describe('the SSRF guard', () => {
  it.each([
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false], // cloud metadata
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fd00::1', false], // unique local
    ['fc00::1', false],
    ['::ffff:127.0.0.1', false], // IPv4-mapped
    ['::ffff:169.254.169.254', false],
    ['::ffff:7f00:1', false],
    ['64:ff9b::a9fe:a9fe', false], // NAT64 of the metadata address
    ['8.8.8.8', true],
    ['93.184.216.34', true],
    ['2606:4700:4700::1111', true],
    ['::ffff:8.8.8.8', true],
    ['not-an-ip', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it('refuses a name that resolves to a private address, at lookup time (DNS rebinding)', async () => {
    const lookup = publicOnlyLookup(resolver({ 'rebind.test': [{ address: '127.0.0.1', family: 4 }] }));
    const { err } = await lookupOnce(lookup, 'rebind.test');
    expect(err?.code).toBe('EADDRBLOCKED');
  });

  it('refuses a name with one private address among public ones', async () => {
    const lookup = publicOnlyLookup(resolver({ 'mixed.test': [{ address: '8.8.8.8', family: 4 }, { address: '10.0.0.1', family: 4 }] }));
    expect((await lookupOnce(lookup, 'mixed.test')).err?.code).toBe('EADDRBLOCKED');
  });

  it('hands the socket the address it checked', async () => {
    const lookup = publicOnlyLookup(resolver({ 'ok.test': [{ address: '93.184.216.34', family: 4 }] }));
    expect(await lookupOnce(lookup, 'ok.test')).toEqual({ err: null, address: '93.184.216.34', family: 4 });
  });

  it('answers the `all` form net.connect uses with autoSelectFamily, with only the checked addresses', async () => {
    const lookup = publicOnlyLookup(resolver({ 'ok.test': [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }] }));
    const got = await new Promise((resolve) => (lookup as any)('ok.test', { all: true }, (err: unknown, addresses: unknown) => resolve({ err, addresses })));
    expect(got).toEqual({ err: null, addresses: [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }] });
    const v6 = await new Promise((resolve) => (lookup as any)('ok.test', { family: 6 }, (err: unknown, address: unknown, family: unknown) => resolve({ err, address, family })));
    expect(v6).toEqual({ err: null, address: '2606:2800:220:1::1', family: 6 });
  });

  it('refuses localhost through the system resolver', async () => {
    expect((await lookupOnce(publicOnlyLookup(), 'localhost')).err?.code).toBe('EADDRBLOCKED');
  });
});
