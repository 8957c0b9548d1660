import type { Book } from './types.js';

/** The book a request asks for, as partners are asked about it. */
export function bookOf(r: Book): Book {
  return { isbn: r.isbn, title: r.title, author: r.author };
}

/** Money for people: "$12.34", or "EUR 12.34" for other currencies. */
export function money(cents: number, currency: string): string {
  return `${currency === 'USD' ? '$' : `${currency} `}${(cents / 100).toFixed(2)}`;
}
