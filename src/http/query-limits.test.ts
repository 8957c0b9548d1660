import { describe, expect, it } from 'vitest';
import { buildSchema, getIntrospectionQuery, getOperationAST, parse, specifiedRules, validate } from 'graphql';
import { INTROSPECTION_MAX_OF_TYPE, limitRules, operationCost, withoutSuggestions } from './query-limits.js';

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

  it('counts __typename like any other field', () => {
    expect(errorsOf('{ item { parent { parent { __typename } } } }')).toEqual([]);
    expect(errorsOf('{ item { parent { parent { parent { __typename } } } } }')).toEqual(['query depth 5 exceeds the limit of 4']);
  });

  // Without memoising, a fragment spreading the next one twice, 40 times over, is 2^40 walks.
  it('walks each fragment once, however often it is spread', () => {
    const chain = Array.from({ length: 40 }, (_, i) => `fragment F${i} on Item { ...F${i + 1} ...F${i + 1} }`).join(' ');
    const doc = `{ item { ...F0 } } ${chain} fragment F40 on Item { parent { id } }`;
    expect(errorsOf(doc)).toEqual([]);
    expect(cost(doc)).toBe(1 + 2 ** 40 * 2);
  });

  it('hides schema suggestions from messages', () => {
    expect(withoutSuggestions('Cannot query field "nme" on type "Item". Did you mean "name"?')).toBe('Cannot query field "nme" on type "Item".');
  });
});

describe('good-faith introspection', () => {
  const defaults = { maxDepth: 12, maxAliases: 30, maxDirectives: 20, maxTokens: 5000, maxCost: 50_000 };
  const refusals = (q: string) => validate(schema, parse(q), [...specifiedRules, ...limitRules(defaults)]);
  const messages = (q: string) => refusals(q).map((e) => e.message);
  const ofTypes = (n: number) => `${'ofType { '.repeat(n)}name${' }'.repeat(n)}`;
  // What graphiql 3 sends (useIntrospectionQuery), and every option graphql-js has.
  const GRAPHIQL = { inputValueDeprecation: true, schemaDescription: true };
  const ALL = { descriptions: true, inputValueDeprecation: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, oneOf: true };

  it("accepts GraphiQL's introspection query under the default limits, whatever its options", () => {
    for (const options of [undefined, GRAPHIQL, ALL]) {
      const query = getIntrospectionQuery(options);
      // Its TypeRef fragment is where the ofType cap comes from: the standard query must fit.
      expect(query.match(/ofType/g)).toHaveLength(INTROSPECTION_MAX_OF_TYPE);
      expect(messages(query)).toEqual([]);
    }
    // What GraphiQL asks of a server without subscriptions, and a query asking each __Type field on different paths.
    expect(messages(getIntrospectionQuery(GRAPHIQL).replace('subscriptionType { name }', ''))).toEqual([]);
    expect(messages('{ __schema { queryType { fields { name } } mutationType { fields { name } } types { interfaces { possibleTypes { name } } } } }')).toEqual([]);
  });

  it('counts introspection towards depth, and refuses ofType nested deeper than the standard query', () => {
    expect(messages(`{ __schema { types { fields { type { ${ofTypes(40)} } } } } }`)).toEqual([
      'introspection depth 45 exceeds the limit of 20',
      `introspection not in good faith: ofType nested more than ${INTROSPECTION_MAX_OF_TYPE} deep`,
    ]);
    expect(messages(`{ __type(name: "Item") { fields { type { ${ofTypes(9)} } } } }`)).toEqual([]);
    expect(messages(`{ __type(name: "Item") { fields { type { ${ofTypes(10)} } } } }`)).toEqual([
      `introspection not in good faith: ofType nested more than ${INTROSPECTION_MAX_OF_TYPE} deep`,
    ]);
    // Through fragments too, each within the cap on its own.
    expect(messages(`{ __type(name: "Item") { ...A } } fragment A on __Type { ${'ofType { '.repeat(6)}...B${' }'.repeat(6)} } fragment B on __Type { ${ofTypes(6)} }`)).toEqual([
      `introspection not in good faith: ofType nested more than ${INTROSPECTION_MAX_OF_TYPE} deep`,
    ]);
  });

  it('refuses a __Type cycle: fields, inputFields, interfaces or possibleTypes twice along one path', () => {
    expect(messages('{ __schema { types { fields { type { fields { type { name } } } } } } }')).toEqual([
      'introspection not in good faith: __Type.fields is asked again inside itself (a cycle)',
    ]);
    // (graphql-js's own MaxIntrospectionDepthRule only refuses three of them nested, of any kind.)
    for (const [name, cycle] of [
      ['inputFields', 'inputFields { type { inputFields { name } } }'],
      ['interfaces', 'interfaces { interfaces { name } }'],
      ['possibleTypes', 'possibleTypes { possibleTypes { name } }'],
    ]) {
      expect(messages(`{ __type(name: "Item") { ${cycle} } }`)).toEqual([`introspection not in good faith: __Type.${name} is asked again inside itself (a cycle)`]);
    }
    expect(messages('{ __schema { types { ...T } } } fragment T on __Type { fields { type { ...U } } } fragment U on __Type { fields { name } }')).toEqual([
      'introspection not in good faith: __Type.fields is asked again inside itself (a cycle)',
    ]);
  });

  it('refuses more than one __schema or __type per operation, aliased, through fragments or mixed', () => {
    for (const q of [
      '{ __schema { queryType { name } } __schema { types { name } } }',
      '{ a: __schema { queryType { name } } b: __schema { queryType { name } } }',
      '{ a: __type(name: "Item") { name } b: __type(name: "Query") { name } }',
      '{ __type(name: "Item") { name } __schema { queryType { name } } }',
      '{ __schema { queryType { name } } ...Q } fragment Q on Query { again: __schema { queryType { name } } }',
    ]) {
      const errors = refusals(q);
      expect(errors.map((e) => e.message), q).toEqual(['introspection not in good faith: __schema and __type may be asked once per operation, not 2 times']);
      expect(errors[0]?.extensions.code, q).toBe('GRAPHQL_VALIDATION_FAILED');
    }
  });
});
