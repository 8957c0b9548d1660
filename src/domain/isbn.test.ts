import { describe, expect, it } from 'vitest';
import { normalizeIsbn } from './isbn.js';

describe('normalizeIsbn', () => {
  it('accepts ISBN-13 with or without separators', () => {
    expect(normalizeIsbn('9781449373320')).toBe('9781449373320');
    expect(normalizeIsbn('978-1-4493-7332-0')).toBe('9781449373320');
    expect(normalizeIsbn(' 978 1 4493 7332 0 ')).toBe('9781449373320');
  });

  it('converts ISBN-10 to ISBN-13, including an X check digit', () => {
    expect(normalizeIsbn('1449373321')).toBe('9781449373320');
    expect(normalizeIsbn('0-306-40615-2')).toBe('9780306406157');
    expect(normalizeIsbn('080442957X')).toBe('9780804429573');
    expect(normalizeIsbn('080442957x')).toBe('9780804429573');
  });

  it('rejects bad checksums, lengths, prefixes and characters', () => {
    expect(normalizeIsbn('9781449373321')).toBeNull();
    expect(normalizeIsbn('1449373322')).toBeNull();
    expect(normalizeIsbn('97814493733')).toBeNull();
    expect(normalizeIsbn('9771449373320')).toBeNull();
    expect(normalizeIsbn('X449373321')).toBeNull();
    expect(normalizeIsbn('978144937332O')).toBeNull();
    expect(normalizeIsbn('')).toBeNull();
    expect(normalizeIsbn('٩٧٨١٤٤٩٣٧٣٣٢٠')).toBeNull();
  });
});
