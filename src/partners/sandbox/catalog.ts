/**
 * The sandbox fleet's catalog: real books (real ISBN-13s, checked in catalog.test.ts) with a list
 * price the simulated sellers derive their own prices from.
 */
export interface CatalogBook {
  isbn: string;
  title: string;
  author: string;
  /** List price of a new copy, in cents (USD). */
  basePriceCents: number;
  /** No seller carries it: the book for OUT_OF_STOCK scenarios. */
  outOfPrint?: boolean;
  /** Only sellers in this tier or a lower one (a higher number) carry it; absent = every tier. */
  minTier?: number;
}

export const CATALOG: readonly CatalogBook[] = Object.freeze([
  { isbn: '9780141439518', title: 'Pride and Prejudice', author: 'Jane Austen', basePriceCents: 899 },
  { isbn: '9780451524935', title: '1984', author: 'George Orwell', basePriceCents: 999 },
  { isbn: '9780061120084', title: 'To Kill a Mockingbird', author: 'Harper Lee', basePriceCents: 1899 },
  { isbn: '9780743273565', title: 'The Great Gatsby', author: 'F. Scott Fitzgerald', basePriceCents: 1700 },
  { isbn: '9780142437247', title: 'Moby-Dick', author: 'Herman Melville', basePriceCents: 1300 },
  { isbn: '9780316769488', title: 'The Catcher in the Rye', author: 'J. D. Salinger', basePriceCents: 999 },
  { isbn: '9780060850524', title: 'Brave New World', author: 'Aldous Huxley', basePriceCents: 1799 },
  { isbn: '9780547928227', title: 'The Hobbit', author: 'J. R. R. Tolkien', basePriceCents: 1499 },
  { isbn: '9781451673319', title: 'Fahrenheit 451', author: 'Ray Bradbury', basePriceCents: 1799 },
  { isbn: '9780141441146', title: 'Jane Eyre', author: 'Charlotte Brontë', basePriceCents: 1000 },
  { isbn: '9780679734505', title: 'Crime and Punishment', author: 'Fyodor Dostoevsky', basePriceCents: 1800 },
  { isbn: '9780060883287', title: 'One Hundred Years of Solitude', author: 'Gabriel García Márquez', basePriceCents: 1799 },
  { isbn: '9780307474728', title: 'Cien años de soledad', author: 'Gabriel García Márquez', basePriceCents: 1695 },
  { isbn: '9780307387899', title: 'The Road', author: 'Cormac McCarthy', basePriceCents: 1700 },
  { isbn: '9780441172719', title: 'Dune', author: 'Frank Herbert', basePriceCents: 1099 },
  { isbn: '9780062316097', title: 'Sapiens: A Brief History of Humankind', author: 'Yuval Noah Harari', basePriceCents: 2499 },
  { isbn: '9780135957059', title: 'The Pragmatic Programmer', author: 'David Thomas; Andrew Hunt', basePriceCents: 5399 },
  { isbn: '9780132350884', title: 'Clean Code', author: 'Robert C. Martin', basePriceCents: 4999 },
  { isbn: '9780201633610', title: 'Design Patterns', author: 'Erich Gamma; Richard Helm; Ralph Johnson; John Vlissides', basePriceCents: 5999 },
  { isbn: '9780131103627', title: 'The C Programming Language', author: 'Brian W. Kernighan; Dennis M. Ritchie', basePriceCents: 6799 },
  { isbn: '9780374533557', title: 'Thinking, Fast and Slow', author: 'Daniel Kahneman', basePriceCents: 2000 },
  { isbn: '9780465026562', title: 'Gödel, Escher, Bach: An Eternal Golden Braid', author: 'Douglas R. Hofstadter', basePriceCents: 2499 },
  { isbn: '9781400033416', title: 'Beloved', author: 'Toni Morrison', basePriceCents: 1700 },
  { isbn: '9780385474542', title: 'Things Fall Apart', author: 'Chinua Achebe', basePriceCents: 1600 },
  { isbn: '9780141439471', title: 'Frankenstein', author: 'Mary Shelley', basePriceCents: 900 },
  { isbn: '9780141439556', title: 'Wuthering Heights', author: 'Emily Brontë', basePriceCents: 900 },
  { isbn: '9780143035008', title: 'Anna Karenina', author: 'Leo Tolstoy', basePriceCents: 2000 },
  { isbn: '9780374528379', title: 'The Brothers Karamazov', author: 'Fyodor Dostoevsky', basePriceCents: 2000 },
  // Scarce: only lower-tier sellers have them, so a round must reach past tier 1.
  { isbn: '9780679732761', title: 'Invisible Man', author: 'Ralph Ellison', basePriceCents: 1700, minTier: 2 },
  { isbn: '9780262510875', title: 'Structure and Interpretation of Computer Programs', author: 'Harold Abelson; Gerald Jay Sussman', basePriceCents: 5500, minTier: 3 },
  { isbn: '9780441478125', title: 'The Left Hand of Darkness', author: 'Ursula K. Le Guin', basePriceCents: 1899, minTier: 3 },
  { isbn: '9780140268867', title: 'The Odyssey', author: 'Homer', basePriceCents: 1800, minTier: 3 },
  // Out of print (these editions): nobody carries them.
  { isbn: '9780679722762', title: 'Ulysses', author: 'James Joyce', basePriceCents: 2000, outOfPrint: true },
  { isbn: '9780451419439', title: 'Les Misérables', author: 'Victor Hugo', basePriceCents: 1200, outOfPrint: true },
  { isbn: '9780156001311', title: 'The Name of the Rose', author: 'Umberto Eco', basePriceCents: 1800, outOfPrint: true },
] satisfies CatalogBook[]);

/**
 * Folds text for matching titles and authors: case, accents, apostrophes and punctuation do not
 * count ("Gödel, Escher, Bach" = "godel escher bach").
 */
export function foldText(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['’`]/g, '')
    .replace(/&/g, ' and ')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

const titleAuthorKey = (title: string, author: string) => `${foldText(title)}\u0000${foldText(author)}`;

const BY_ISBN: ReadonlyMap<string, CatalogBook> = new Map(CATALOG.map((b) => [b.isbn, b]));
const BY_TITLE_AUTHOR: ReadonlyMap<string, CatalogBook> = new Map(CATALOG.map((b) => [titleAuthorKey(b.title, b.author), b]));

/** The book with this ISBN-13 (digits only, as the broker sends it), or undefined. */
export function bookByIsbn(isbn: string): CatalogBook | undefined {
  return BY_ISBN.get(isbn.replace(/[\s-]/g, ''));
}

/** The book with this title and author, compared folded; undefined when either is blank or unknown. */
export function bookByTitleAuthor(title: string, author: string): CatalogBook | undefined {
  if (foldText(title) === '' || foldText(author) === '') return undefined;
  return BY_TITLE_AUTHOR.get(titleAuthorKey(title, author));
}

/** What a title search finds: one book, none, or several that the title (and author) cannot tell apart. */
export type TitleMatch =
  | { kind: 'found'; book: CatalogBook }
  | { kind: 'none' }
  | { kind: 'ambiguous'; books: CatalogBook[] };

const LEADING_ARTICLE = /^(?:the|a|an) (?=\S)/;
/** Author words that say nothing about who wrote the book ("Kernighan and Ritchie"). */
const AUTHOR_NOISE: ReadonlySet<string> = new Set(['and', 'et', 'al']);

/** A title as searched: folded, a leading English article dropped ("The Hobbit" = "hobbit"). */
export function titleKey(title: string): string {
  return foldText(title).replace(LEADING_ARTICLE, '');
}

/** The main title, before a subtitle (`Sapiens: A Brief History…` → "sapiens"); null when there is no subtitle. */
function mainTitleKey(title: string): string | null {
  const colon = title.indexOf(':');
  if (colon < 0) return null;
  const key = titleKey(title.slice(0, colon));
  return key === '' ? null : key;
}

/**
 * The words that may name a book's author(s): every folded word, plus each run of initials joined
 * ("J. R. R. Tolkien" → j, r, tolkien, jrr), so "JRR Tolkien" and "Tolkien" both match.
 */
function authorWords(author: string): Set<string> {
  const words = foldText(author).split(' ').filter((w) => w !== '');
  const out = new Set(words);
  let initials = '';
  for (const w of [...words, '']) {
    if (w.length === 1) initials += w;
    else {
      if (initials.length > 1) out.add(initials);
      initials = '';
    }
  }
  return out;
}

/** The words of an author query that must all match: initials and filler words are left out. */
function authorQueryWords(author: string): string[] {
  return foldText(author)
    .split(' ')
    .filter((w) => w.length > 1 && !AUTHOR_NOISE.has(w));
}

interface TitleIndex {
  byTitle: Map<string, CatalogBook[]>;
  byMainTitle: Map<string, CatalogBook[]>;
  authors: Map<CatalogBook, Set<string>>;
}

function indexTitles(books: readonly CatalogBook[]): TitleIndex {
  const byTitle = new Map<string, CatalogBook[]>();
  const byMainTitle = new Map<string, CatalogBook[]>();
  const authors = new Map<CatalogBook, Set<string>>();
  const add = (map: Map<string, CatalogBook[]>, key: string, book: CatalogBook) => {
    const list = map.get(key);
    if (list) list.push(book);
    else map.set(key, [book]);
  };
  for (const book of books) {
    add(byTitle, titleKey(book.title), book);
    const main = mainTitleKey(book.title);
    if (main !== null) add(byMainTitle, main, book);
    authors.set(book, authorWords(book.author));
  }
  return { byTitle, byMainTitle, authors };
}

const CATALOG_TITLES = indexTitles(CATALOG);
const titleIndexes = new WeakMap<readonly CatalogBook[], TitleIndex>([[CATALOG, CATALOG_TITLES]]);

/**
 * Searches `books` (the whole catalog by default) by title, the way a bookstore's search box does:
 * the title is compared folded (case, accents, punctuation and spacing do not count) with a leading
 * "The", "A" or "An" ignored; a title that matches no book in full may match a book's main title
 * (before its subtitle: "Sapiens" finds "Sapiens: A Brief History of Humankind"). A non-blank
 * `author` narrows the matches to books whose author(s) include every word of it except initials
 * ("Tolkien", "J.R.R. Tolkien", "Le Guin", "Kernighan and Ritchie" all match as expected); an
 * author that names nobody relevant leaves nothing.
 *
 * Several books left → `ambiguous`: the fleet then answers 404 rather than guess (a wrong guess
 * would sell the wrong book). The search runs over the whole catalog, not one seller's shelf, so
 * every seller resolves a title to the same book or to none.
 */
export function findByTitle(title: string, author: string | null = null, books: readonly CatalogBook[] = CATALOG): TitleMatch {
  const key = titleKey(title);
  if (key === '') return { kind: 'none' };
  let index = titleIndexes.get(books);
  if (!index) {
    index = indexTitles(books);
    titleIndexes.set(books, index);
  }
  let candidates = index.byTitle.get(key) ?? index.byMainTitle.get(key) ?? [];
  const wanted = author === null ? [] : authorQueryWords(author);
  if (wanted.length > 0) {
    candidates = candidates.filter((b) => {
      const words = index.authors.get(b)!;
      return wanted.every((w) => words.has(w));
    });
  }
  if (candidates.length === 0) return { kind: 'none' };
  if (candidates.length === 1) return { kind: 'found', book: candidates[0]! };
  return { kind: 'ambiguous', books: [...candidates] };
}
