import { describe, expect, it } from 'vitest';
import { describeNoOffers } from './engine.js';

const tally = (t: Partial<{ answered: number; unanswerable: number; failed: number; pending: number; notAsked: number }>) => {
  const r = { answered: 0, unanswerable: 0, failed: 0, pending: 0, notAsked: 0, ...t };
  return { ...r, consulted: r.answered + r.unanswerable + r.failed + r.pending };
};

describe('the outcome message of a round without offers', () => {
  it('says every seller asked lacks the book', () => {
    expect(describeNoOffers(tally({ answered: 8 }), true)).toBe('None of the 8 sellers has the book');
  });

  it("says so when the round's call budget left sellers for the next look", () => {
    expect(describeNoOffers(tally({ answered: 64, notAsked: 936 }), true)).toBe(
      'None of the 64 sellers asked so far has the book; 936 more sellers are asked at the next look',
    );
    expect(describeNoOffers(tally({ answered: 60, failed: 4, notAsked: 1 }), true)).toBe(
      'No offers: 60 sellers do not have the book, 4 sellers did not answer; 1 more seller is asked at the next look',
    );
  });

  it('names each kind of answer', () => {
    expect(describeNoOffers(tally({ answered: 3, unanswerable: 1 }), false)).toBe('No offers: 3 sellers do not have the book, 1 seller cannot search by title');
    expect(describeNoOffers(tally({}), true)).toBe('No sellers are configured');
  });
});
