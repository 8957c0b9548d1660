import { Placeholder, SQL, is, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';

/** A value bound to a statement's parameter, as the driver sends it. */
export type Bound = string | number | boolean | null;

/** The parameters of a statement, as the SQL its builder places them with. */
export type Slots<P extends string> = { readonly [K in P]: SQL };

/**
 * A statement whose text is rendered once. drizzle renders an `sql` template afresh on every
 * execution, walking every fragment, column and nested template: for the statements that serve
 * a whole batch (a data-modifying CTE of a hundred lines, a select of every column) that walk
 * was a tenth of all the memory the broker allocated under load, and a few percent of its CPU,
 * to produce the same text each time. Here `build` runs once, on first use, with a placeholder
 * for each named parameter, and the text drizzle renders is kept; each execution gives values
 * for the names and hands drizzle that text with them. The text is the one the builder would
 * have rendered, so the driver's prepared statement is the same too.
 *
 * A name may be placed more than once; values embedded in the template by `build` itself are
 * kept as they were rendered. Values are sent as they are given, no column encoder applies: a
 * date goes in as ISO text with a cast in the template. What a call returns is for `execute` only:
 * embedded in another template it would render as nothing.
 */
export function statement<P extends string>(names: readonly P[], build: (slots: Slots<P>) => SQL): (values: { readonly [K in P]: Bound }) => SQL {
  let shape: Shape<P> | null = null;
  return (values) => {
    shape ??= render(names, build);
    const params = shape.slots.map((slot) => (slot.name === null ? slot.value : values[slot.name]));
    return new Rendered(shape.text, params);
  };
}

/**
 * A template already rendered: drizzle asks an `SQL` for its text and parameters through
 * `toQuery` (its dialect's `sqlToQuery`, which `execute` calls on whatever it is given), and this
 * one has them at hand.
 */
class Rendered extends SQL {
  constructor(
    private readonly text: string,
    private readonly params: unknown[],
  ) {
    super([]);
  }

  override toQuery(): { sql: string; params: unknown[] } {
    return { sql: this.text, params: this.params };
  }
}

interface Shape<P extends string> {
  /** The rendered text, with $1, $2, … for the parameters. */
  readonly text: string;
  /** Each parameter in order: a named one, or a value the builder embedded. */
  readonly slots: ReadonlyArray<{ name: P; value?: undefined } | { name: null; value: unknown }>;
}

const dialect = new PgDialect();

function render<P extends string>(names: readonly P[], build: (slots: Slots<P>) => SQL): Shape<P> {
  const slots = Object.fromEntries(names.map((n) => [n, sql`${sql.placeholder(n)}`])) as Slots<P>;
  const { sql: text, params } = dialect.sqlToQuery(build(slots));
  // drizzle numbers parameters $1, $2, … in the order it places them, each once.
  const pieces = text.split(/\$(\d+)\b/);
  const order: Shape<P>['slots'][number][] = [];
  for (let i = 0; i < pieces.length; i++) {
    if (i % 2 === 0) continue;
    const n = Number(pieces[i]);
    const param = params[n - 1];
    if (n !== order.length + 1 || param === undefined) throw new Error(`statement: parameter $${n} out of order in ${text.slice(0, 80)}…`);
    if (is(param, Placeholder)) {
      const name = param.name as P;
      if (!names.includes(name)) throw new Error(`statement: unknown parameter ${String(name)}`);
      order.push({ name });
    } else {
      order.push({ name: null, value: param });
    }
  }
  if (order.length !== params.length) throw new Error(`statement: ${params.length} parameters rendered, ${order.length} placed`);
  return { text, slots: order };
}
