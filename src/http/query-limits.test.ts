import { describe, expect, it } from 'vitest';
import { buildSchema, getOperationAST, parse, specifiedRules, validate } from 'graphql';
import { limitRules, operationCost, withoutSuggestions } from './query-limits.js';

const schema = buildSchema(`
  type Query { items(first: Int): Conn!, item: Item, tags: [String!]! }
  type Conn { edges: [Edge!]!, total: Int }
  type Edge { node: Item! }
  type Item { id: ID!, children: [Item!]!, parent: Item, name: String }
`);
const limits = { maxDepth: 4, maxAliases: 2, maxDirectives: 2, maxTokens: 1000, maxCost: 1000 };
const errorsOf = (q: string) => validate(schema, parse(q), [...specifiedRules, ...limitRules(limits)]).map((e) => e.message);
const cost = (q: string, vars?: Record<string, unknown>) => {
  const doc = parse(q);
  return operationCost(schema, doc, getOperationAST(doc)!, vars);
};

describe('query limits', () => {
  it('refuses operations nested deeper than the limit, also through fragments', () => {
    expect(errorsOf('{ item { parent { parent { id } } } }')).toEqual([]);
    expect(errorsOf('{ item { parent { parent { parent { id } } } } }')).toEqual(['query depth 5 exceeds the limit of 4']);
    expect(errorsOf('{ item { ...F } } fragment F on Item { parent { parent { parent { id } } } }')).toEqual([
      'query depth 5 exceeds the limit of 4',
    ]);
  });

  it('counts aliases and directives across the whole document', () => {
    expect(errorsOf('{ a: item { id } b: item { id } }')).toEqual([]);
    expect(errorsOf('{ a: item { id } b: item { id } c: item { id } }')).toEqual(['more than 2 aliases in one document']);
    expect(errorsOf('{ item @include(if: true) { id @skip(if: false) name @skip(if: false) } }')).toEqual(['more than 2 directives in one document']);
  });

  it('costs lists by their first argument (with variables) or a default size', () => {
    expect(cost('{ item { id } }')).toBe(2);
    expect(cost('{ tags }')).toBe(10);
    expect(cost('{ item { children { id } } }')).toBe(1 + 10 * 2);
    expect(cost('query($n: Int) { items(first: $n) { edges { node { id } } } }', { n: 50 })).toBe(50 * (1 + 1 * (1 + 1 * 2)));
    expect(cost('{ items(first: 3) { total } }')).toBe(3 * 2);
    expect(cost('{ item { children { children { children { id } } } } }')).toBeGreaterThan(1000);
  });

  it('hides schema suggestions from messages', () => {
    expect(withoutSuggestions('Cannot query field "nme" on type "Item". Did you mean "name"?')).toBe('Cannot query field "nme" on type "Item".');
  });
});
