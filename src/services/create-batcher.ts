import type { Executor } from '../db/client.js';
import { type CreateResult, type RequestToCreate, createRequests } from '../db/queries/create-requests.js';

export interface CreateBatcherOptions {
  /** Most requests written by one statement. */
  maxRows?: number;
  /** Statements in flight at once; creates arriving meanwhile wait and go together in the next. */
  maxInFlight?: number;
}

interface Waiting {
  item: RequestToCreate;
  resolve(result: CreateResult): void;
  reject(error: Error): void;
}

/**
 * SQLSTATE classes a single row can cause, or a lost lock race between two batches: a batch that
 * fails with one of these is written again row by row, so one caller's bad row (or bad luck)
 * fails only that caller. Any other failure (connection lost, a bug in the statement) would fail
 * every row alike, and is reported to every caller of the batch at once.
 */
const ROW_ERROR_CLASSES: readonly string[] = [
  '22', // data exception: a value the column refuses
  '23', // integrity constraint violation: a CHECK, NOT NULL or unique index
  '40', // transaction rollback: deadlock or serialization failure
];

/**
 * Group commit for creates (a write-side DataLoader): the creates of one event-loop turn, up to
 * `maxRows`, go to the database as one statement, and each caller gets its own result. While
 * `maxInFlight` statements are running, new creates queue and leave together when one finishes,
 * so under load batches grow instead of statements piling up on the pool.
 */
export class CreateBatcher {
  private readonly maxRows: number;
  private readonly maxInFlight: number;
  private queue: Waiting[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly db: Executor,
    options: CreateBatcherOptions = {},
    /** The batch operation; tests wrap it to count or break statements. */
    private readonly write: typeof createRequests = createRequests,
  ) {
    this.maxRows = options.maxRows ?? 100;
    this.maxInFlight = options.maxInFlight ?? 4;
  }

  /** Creates one request along with the others of this turn: its row, or `key_taken`. */
  create(item: RequestToCreate): Promise<CreateResult> {
    return new Promise<CreateResult>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxRows) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate rather than a microtask: creates from different HTTP requests arrive in
        // different I/O callbacks of one poll phase, and should share the statement.
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxRows);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.flush();
      });
    }
  }

  /** Writes a batch and settles each of its callers; never rejects. */
  private async run(batch: readonly Waiting[]): Promise<void> {
    let results: CreateResult[];
    try {
      results = await this.write(
        this.db,
        batch.map((w) => w.item),
      );
    } catch (e) {
      if (batch.length > 1 && isRowError(e)) {
        // One at a time: each statement holds at most one key, so these cannot deadlock.
        for (const w of batch) await this.run([w]);
        return;
      }
      const error = e instanceof Error ? e : new Error(String(e), { cause: e });
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }
}

function isRowError(e: unknown): boolean {
  // Drizzle wraps the driver's error (postgres.js or PGlite), which carries the SQLSTATE as `code`.
  for (let cur: unknown = e; cur instanceof Object; cur = (cur as { cause?: unknown }).cause) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code.length === 5) return ROW_ERROR_CLASSES.includes(code.slice(0, 2));
  }
  return false;
}
