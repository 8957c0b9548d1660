import { describe, expect, it } from 'vitest';
import { normalizeIsbn } from '../../domain/isbn.js';
import { CATALOG, bookByIsbn, bookByTitleAuthor, foldText } from './catalog.js';
import { createRng, hashSeed, logNormalMs } from './random.js';

describe('sandbox catalog', () => {
  it('holds about thirty real books with valid, unique ISBN-13s and positive prices', () => {
    expect(CATALOG.length).toBeGreaterThanOrEqual(30);
    for (const book of CATALOG) {
      expect(normalizeIsbn(book.isbn), `${book.title} ${book.isbn}`).toBe(book.isbn);
      expect(Number.isSafeInteger(book.basePriceCents) && book.basePriceCents > 0).toBe(true);
    }
    expect(new Set(CATALOG.map((b) => b.isbn)).size).toBe(CATALOG.length);
    expect(new Set(CATALOG.map((b) => `${foldText(b.title)}|${foldText(b.author)}`)).size).toBe(CATALOG.length);
  });

  it('flags a few books out of print and a few carried by lower tiers only', () => {
    expect(CATALOG.filter((b) => b.outOfPrint).length).toBeGreaterThanOrEqual(2);
    expect(CATALOG.filter((b) => (b.minTier ?? 1) > 1).length).toBeGreaterThanOrEqual(2);
  });

  it('finds books by ISBN (with separators) and by folded title and author', () => {
    expect(bookByIsbn('978-0-14-143951-8')?.title).toBe('Pride and Prejudice');
    expect(bookByIsbn('9780000000002')).toBeUndefined();
    expect(bookByTitleAuthor('godel escher bach an eternal golden braid', 'DOUGLAS R HOFSTADTER')?.isbn).toBe('9780465026562');
    expect(bookByTitleAuthor('Cien Años de Soledad', 'Gabriel Garcia Marquez')?.isbn).toBe('9780307474728');
    expect(bookByTitleAuthor('  moby dick ', 'herman melville')?.isbn).toBe('9780142437247');
    expect(bookByTitleAuthor('Moby-Dick', '')).toBeUndefined();
    expect(bookByTitleAuthor('Moby-Dick', 'Someone Else')).toBeUndefined();
  });

  it('folds case, accents, apostrophes and punctuation', () => {
    expect(foldText('Gödel, Escher, Bach!')).toBe('godel escher bach');
    expect(foldText("Don't Panic")).toBe(foldText('dont panic'));
    expect(foldText('Pride & Prejudice')).toBe('pride and prejudice');
  });
});

describe('sandbox randomness', () => {
  it('is reproducible by seed', () => {
    const a = createRng(hashSeed(42, 'x'));
    const b = createRng(hashSeed(42, 'x'));
    const c = createRng(hashSeed(43, 'x'));
    const draws = (r: () => number) => Array.from({ length: 5 }, r);
    expect(draws(a)).toEqual(draws(b));
    expect(draws(createRng(hashSeed(42, 'x')))).not.toEqual(draws(c));
  });

  it('draws latencies whose median and p99 match the fitted log-normal', () => {
    const rng = createRng(7);
    const samples = Array.from({ length: 20_000 }, () => logNormalMs(rng, 40, 150)).sort((x, y) => x - y);
    const median = samples[Math.floor(samples.length * 0.5)]!;
    const p99 = samples[Math.floor(samples.length * 0.99)]!;
    expect(median).toBeGreaterThan(37);
    expect(median).toBeLessThan(43);
    expect(p99).toBeGreaterThan(130);
    expect(p99).toBeLessThan(170);
    expect(logNormalMs(rng, 0, 0)).toBe(0);
  });
});
