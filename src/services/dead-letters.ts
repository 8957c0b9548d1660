import type { Db } from '../db/client.js';
import { advanceAttempt, findAttempt } from '../db/queries/attempts.js';
import { findDeadLetter, listDeadLetters, recordDeadLetterFailure, resolveDeadLetter } from '../db/queries/dead-letters.js';
import type { DeadLetterRow, SellerRow } from '../db/schema.js';
import type { CallbackMessage, CallbackReceiver } from '../partners/callbacks.js';
import type { Clock } from '../domain/clock.js';
import { type Outcome, ok, refused, toError, userError } from '../domain/errors.js';

/**
 * Work that kept failing, for admins: list it, and re-drive it. An unresolved order attempt is
 * made due again with a fresh count of tries; a stored partner callback is processed again.
 */
export class DeadLetterService {
  constructor(
    private readonly d: {
      db: Db;
      clock: Clock;
      callbacks: CallbackReceiver;
      findSeller: (id: string) => Promise<SellerRow | null>;
      /** Nudges the engine to look at attempts now. */
      wake: () => void;
    },
  ) {}

  list(includeResolved: boolean, limit: number): Promise<DeadLetterRow[]> {
    return listDeadLetters(this.d.db, { includeResolved, limit });
  }

  async redrive(id: string): Promise<Outcome<DeadLetterRow>> {
    const letter = await findDeadLetter(this.d.db, id);
    if (!letter) return refused(userError('NOT_FOUND', 'no such dead letter', ['id']));
    if (letter.resolvedAt) return ok(letter);
    const now = this.d.clock.now();
    try {
      if (letter.kind === 'attempt') await this.redriveAttempt(letter, now);
      else await this.redriveCallback(letter);
    } catch (e) {
      const message = toError(e).message;
      await recordDeadLetterFailure(this.d.db, id, message, now);
      return ok((await findDeadLetter(this.d.db, id))!);
    }
    return ok((await resolveDeadLetter(this.d.db, id, now)) ?? (await findDeadLetter(this.d.db, id))!);
  }

  private async redriveAttempt(letter: DeadLetterRow, now: Date): Promise<void> {
    const a = await findAttempt(this.d.db, letter.ref);
    if (!a) throw new Error('the attempt no longer exists');
    if (a.state === 'succeeded' || a.state === 'failed') return; // resolved since
    const moved = await advanceAttempt(this.d.db, a.id, a.state, {
      tries: 0,
      needsAttention: false,
      nextCheckAt: now,
      leaseOwner: null,
      leaseExpiresAt: null,
      updatedAt: now,
    });
    if (!moved) throw new Error('the attempt changed while being re-driven; try again');
    this.d.wake();
  }

  private async redriveCallback(letter: DeadLetterRow): Promise<void> {
    const seller = await this.d.findSeller(letter.ref);
    if (!seller) throw new Error('the seller no longer exists');
    await this.d.callbacks.process(seller, letter.payload as unknown as CallbackMessage);
  }
}
