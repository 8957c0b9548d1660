import { describe, expect, it } from 'vitest';
import { normalizeIsbn } from '../../domain/isbn.js';
import { CATALOG, bookByIsbn, bookByTitleAuthor, type CatalogBook, findByTitle, foldText } from './catalog.js';
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

describe('sandbox title search (findByTitle)', () => {
  const found = (title: string, author: string | null = null) => {
    const m = findByTitle(title, author);
    return m.kind === 'found' ? m.book.isbn : m.kind;
  };

  it('matches a folded title, with or without a leading article, and a main title without its subtitle', () => {
    expect(found('the hobbit')).toBe('9780547928227');
    expect(found('Hobbit')).toBe('9780547928227');
    expect(found('  THE   HOBBIT!! ')).toBe('9780547928227');
    expect(found('Moby Dick')).toBe('9780142437247');
    expect(found('Godel, Escher, Bach')).toBe('9780465026562');
    expect(found('Sapiens')).toBe('9780062316097');
    expect(found('thinking fast and slow')).toBe('9780374533557');
    expect(found('Cien años de soledad')).toBe('9780307474728');
    expect(found('One Hundred Years of Solitude')).toBe('9780060883287');
  });

  it('narrows by author: every word of it (initials aside) must name the author; blank = no narrowing', () => {
    expect(found('Dune', 'Frank Herbert')).toBe('9780441172719');
    expect(found('Dune', 'herbert')).toBe('9780441172719');
    expect(found('Dune', '  ')).toBe('9780441172719');
    expect(found('The Catcher in the Rye', 'JD Salinger')).toBe('9780316769488');
    expect(found('The Catcher in the Rye', 'Salinger, J.D.')).toBe('9780316769488');
    expect(found('The C Programming Language', 'Kernighan & Ritchie')).toBe('9780131103627');
    expect(found('The Left Hand of Darkness', 'Ursula Le Guin')).toBe('9780441478125');
    expect(found('Dune', 'Stephen King')).toBe('none');
    expect(found('Dune', 'Frank Smith')).toBe('none');
  });

  it('finds nothing for an unknown or blank title', () => {
    expect(found('A Book Nobody Ever Wrote')).toBe('none');
    expect(found('')).toBe('none');
    expect(found('The')).toBe('none');
    expect(found('Pride')).toBe('none');
  });

  it('reports several books the title (and author) cannot tell apart as ambiguous, not a guess', () => {
    const books: CatalogBook[] = [
      { isbn: '1', title: 'The Road', author: 'Cormac McCarthy', basePriceCents: 100 },
      { isbn: '2', title: 'The Road', author: 'Jack London', basePriceCents: 100 },
      { isbn: '3', title: 'Collected Poems', author: 'Jack London', basePriceCents: 100 },
      { isbn: '4', title: 'Collected Poems', author: 'Jack London', basePriceCents: 200 },
    ];
    const road = findByTitle('the road', null, books);
    expect(road.kind).toBe('ambiguous');
    expect(road.kind === 'ambiguous' ? road.books.map((b) => b.isbn) : []).toEqual(['1', '2']);
    expect(findByTitle('Road', 'McCarthy', books)).toEqual({ kind: 'found', book: books[0] });
    expect(findByTitle('Road', 'Jack London', books)).toEqual({ kind: 'found', book: books[1] });
    expect(findByTitle('Collected Poems', 'London', books).kind).toBe('ambiguous');
  });

  it('leaves every catalog title unambiguous', () => {
    for (const book of CATALOG) expect(findByTitle(book.title), book.title).toEqual({ kind: 'found', book });
  });
});
