import type { Db } from '../db/client.js';
import { findDeadLetter, listDeadLetters, recordDeadLetterFailure, resolveDeadLetter } from '../db/queries/dead-letters.js';
import type { DeadLetterRow, SellerRow } from '../db/schema.js';
import { findDelivered, findDelivery, redriveDelivery } from '../db/queries/webhooks.js';
import type { CallbackMessage, CallbackReceiver } from '../partners/callbacks.js';
import type { Clock } from '../domain/clock.js';
import { redriveAttempt } from '../engine/attempt-driver.js';
import { type Outcome, ok, refused, toError, userError } from '../domain/errors.js';

/**
 * Work that kept failing, for admins: list it, and re-drive it. An unresolved order attempt is
 * handed back to the attempt driver (due now, a fresh count of tries; the reconciler drives it
 * from its row); a stored partner callback is processed again.
 */
export class DeadLetterService {
  constructor(
    private readonly d: {
      db: Db;
      clock: Clock;
      callbacks: CallbackReceiver;
      findSeller: (id: string) => Promise<SellerRow | null>;
      /** Nudges the engine's reconciler to drive due attempts now. */
      wake: () => void;
      /** Nudges the webhook relay to deliver what is due now. */
      wakeWebhooks: () => void;
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
      if (letter.kind === 'attempt') await this.redriveAttempt(letter.ref, now);
      else if (letter.kind === 'webhook') await this.redriveWebhook(letter.ref, now);
      else await this.redriveCallback(letter);
    } catch (e) {
      const message = toError(e).message;
      await recordDeadLetterFailure(this.d.db, id, message, now);
      return ok((await findDeadLetter(this.d.db, id))!);
    }
    return ok((await resolveDeadLetter(this.d.db, id, now)) ?? (await findDeadLetter(this.d.db, id))!);
  }

  private async redriveAttempt(attemptId: string, now: Date): Promise<void> {
    // A finished attempt was resolved since: the letter is resolved with nothing to drive.
    if ((await redriveAttempt(this.d.db, attemptId, now)) === 'due') this.d.wake();
  }

  /** The delivery is retried with a fresh retry window; one since delivered is resolved as it is. */
  private async redriveWebhook(deliveryId: string, now: Date): Promise<void> {
    if (await redriveDelivery(this.d.db, Number(deliveryId), now)) return this.d.wakeWebhooks();
    const row = await findDelivery(this.d.db, Number(deliveryId));
    if (row) throw new Error(`the delivery is ${row.state}`);
    if (!(await findDelivered(this.d.db, Number(deliveryId)))) throw new Error('the webhook endpoint was deleted since');
  }

  private async redriveCallback(letter: DeadLetterRow): Promise<void> {
    const seller = await this.d.findSeller(letter.ref);
    if (!seller) throw new Error('the seller no longer exists');
    await this.d.callbacks.process(seller, letter.payload as unknown as CallbackMessage);
  }
}
