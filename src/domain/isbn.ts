/**
 * ISBN parsing: accepts ISBN-10 or ISBN-13 with hyphens or spaces, checks the checksum and
 * returns the ISBN-13 form. Returns null for anything that is not a valid ISBN.
 */
export function normalizeIsbn(raw: string): string | null {
  const compact = raw.replace(/[\s-]/g, '').toUpperCase();
  if (/^\d{9}[\dX]$/.test(compact)) return isbn10Valid(compact) ? isbn10To13(compact) : null;
  if (/^97[89]\d{10}$/.test(compact)) return isbn13CheckDigit(compact.slice(0, 12)) === compact[12] ? compact : null;
  return null;
}

function isbn10Valid(isbn: string): boolean {
  let sum = 0;
  for (let i = 0; i < 10; i++) {
    const c = isbn[i]!;
    const v = c === 'X' ? (i === 9 ? 10 : NaN) : Number(c);
    sum += v * (10 - i);
  }
  return Number.isFinite(sum) && sum % 11 === 0;
}

function isbn10To13(isbn10: string): string {
  const body = `978${isbn10.slice(0, 9)}`;
  return body + isbn13CheckDigit(body);
}

function isbn13CheckDigit(first12: string): string {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += Number(first12[i]) * (i % 2 === 0 ? 1 : 3);
  return String((10 - (sum % 10)) % 10);
}
