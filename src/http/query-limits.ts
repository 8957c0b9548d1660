import {
  type ArgumentNode,
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  Kind,
  getNamedType,
  isListType,
  isNonNullType,
  type GraphQLOutputType,
  type GraphQLField,
  isObjectType,
  isInterfaceType,
} from 'graphql';

/**
 * Limits on what one operation may ask for (SPEC §10), the same on HTTP and WebSocket: nesting
 * depth, aliases and directives are validation rules; cost needs the variables (list sizes), so
 * it is computed once the operation is resolved. Token count is a parse option.
 */
export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxDirectives: number;
  maxTokens: number;
  maxCost: number;
}

const code = { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } } as const;

export function limitRules(limits: QueryLimits): ValidationRule[] {
  return [maxDepthRule(limits.maxDepth), goodFaithIntrospectionRule, maxAliasesRule(limits.maxAliases), maxDirectivesRule(limits.maxDirectives)];
}

/**
 * Good-faith introspection, after graphql-java's GoodFaithIntrospection. Introspection counts
 * towards depth like any selection, but the standard query GraphiQL and codegen send is 15 deep
 * (its TypeRef fragment spells a type's wrappers as nine nested `ofType`s), so `__schema` and
 * `__type` are held to this depth of their own, graphql-java's GOOD_FAITH_MAX_DEPTH_COUNT,
 * instead of QUERY_MAX_DEPTH. What keeps them cheap is their shape (goodFaithIntrospectionRule).
 */
export const INTROSPECTION_MAX_DEPTH = 20;
/** `ofType`s along one path: as many as graphql-js's own introspection query nests (4 nested lists). */
export const INTROSPECTION_MAX_OF_TYPE = 9;
const INTROSPECTION_ROOTS = new Set(['__schema', '__type']);
/** The `__Type` fields that lead back to `__Type`s: one of each along a path, so no cycles. */
const TYPE_CYCLE_FIELDS = new Map([
  ['fields', 1],
  ['inputFields', 2],
  ['interfaces', 4],
  ['possibleTypes', 8],
]);

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  return fragments;
}

function maxDepthRule(max: number): ValidationRule {
  return (ctx: ValidationContext): ASTVisitor => {
    const fragments = fragmentsOf(ctx.getDocument());
    // A fragment's depth below where it is spread is the same wherever it is spread: computing it
    // once keeps a document that spreads fragments in fragments from costing 2^n walks.
    const memo = new Map<string, Depth>();
    return {
      OperationDefinition(op) {
        const { data, introspection } = depthOf(op.selectionSet, fragments, memo, new Set());
        if (data > max) ctx.reportError(new GraphQLError(`query depth ${data} exceeds the limit of ${max}`, { nodes: [op], ...code }));
        if (introspection > INTROSPECTION_MAX_DEPTH) {
          ctx.reportError(new GraphQLError(`introspection depth ${introspection} exceeds the limit of ${INTROSPECTION_MAX_DEPTH}`, { nodes: [op], ...code }));
        }
      },
    };
  };
}

/** The deepest path under `__schema`/`__type`, and the deepest elsewhere. */
interface Depth {
  data: number;
  introspection: number;
}

function depthOf(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, memo: Map<string, Depth>, active: Set<string>): Depth {
  const depth: Depth = { data: 0, introspection: 0 };
  for (const s of set.selections) {
    let inner: Depth;
    if (s.kind === Kind.FIELD) {
      const below = s.selectionSet ? depthOf(s.selectionSet, fragments, memo, active) : { data: 0, introspection: 0 };
      const here = 1 + Math.max(below.data, below.introspection);
      inner = INTROSPECTION_ROOTS.has(s.name.value) ? { data: 0, introspection: here } : { data: here, introspection: 0 };
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      inner = depthOf(s.selectionSet, fragments, memo, active);
    } else {
      const name = s.name.value;
      const f = fragments.get(name);
      if (!f || active.has(name)) continue; // cycles are reported by the standard rules
      let known = memo.get(name);
      if (!known) {
        active.add(name);
        known = depthOf(f.selectionSet, fragments, memo, active);
        active.delete(name);
        memo.set(name, known);
      }
      inner = known;
    }
    depth.data = Math.max(depth.data, inner.data);
    depth.introspection = Math.max(depth.introspection, inner.introspection);
  }
  return depth;
}

/**
 * Refuses introspection that is not asked in good faith (graphql-java's GoodFaithIntrospection):
 * more than one `__schema` or `__type` in an operation (aliases and fragments included); a
 * `__Type` cycle, that is `fields`, `inputFields`, `interfaces` or `possibleTypes` twice along one
 * path (`types { fields { type { fields …`), which multiplies the answer by the schema's size at
 * every turn; or `ofType` nested deeper than any type's wrappers. The standard query does none.
 */
function goodFaithIntrospectionRule(ctx: ValidationContext): ASTVisitor {
  const fragments = fragmentsOf(ctx.getDocument());
  const rootCounts = new Map<string, number>();
  return {
    OperationDefinition(op) {
      const roots = new Set<FieldNode>();
      const count = introspectionRoots(op.selectionSet, fragments, rootCounts, new Set(), roots);
      if (count > 1) {
        ctx.reportError(
          new GraphQLError(`introspection not in good faith: __schema and __type may be asked once per operation, not ${count} times`, {
            nodes: [...roots],
            ...code,
          }),
        );
      }
      const walk: ShapeWalk = { fragments, visited: new Set(), found: new Map() };
      for (const root of roots) if (root.selectionSet) walkShape(root.selectionSet, 0, 0, walk);
      for (const error of walk.found.values()) ctx.reportError(error);
    },
  };
}

/** How many `__schema`/`__type` fields the operation asks for; collects them in `roots`. */
function introspectionRoots(
  set: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  memo: Map<string, number>,
  active: Set<string>,
  roots: Set<FieldNode>,
): number {
  let count = 0;
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) {
      // Only the query root has them (the standard rules refuse them elsewhere).
      if (INTROSPECTION_ROOTS.has(s.name.value)) {
        count += 1;
        roots.add(s);
      }
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      count += introspectionRoots(s.selectionSet, fragments, memo, active, roots);
    } else {
      const name = s.name.value;
      const f = fragments.get(name);
      if (!f || active.has(name)) continue;
      let known = memo.get(name);
      if (known === undefined) {
        active.add(name);
        known = introspectionRoots(f.selectionSet, fragments, memo, active, roots);
        active.delete(name);
        memo.set(name, known);
      }
      count += known;
    }
  }
  return count;
}

interface ShapeWalk {
  fragments: Map<string, FragmentDefinitionNode>;
  /** Fragment spreads already walked, with the path's state: the same state finds the same. */
  visited: Set<string>;
  /** The first refusal of each kind, so a 40-deep chain is one error and not thirty. */
  found: Map<string, GraphQLError>;
}

/** `cycles` holds the TYPE_CYCLE_FIELDS bits already on the path; `ofTypes` counts its `ofType`s. */
function walkShape(set: SelectionSetNode, cycles: number, ofTypes: number, walk: ShapeWalk): void {
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) {
      const name = s.name.value;
      const bit = TYPE_CYCLE_FIELDS.get(name) ?? 0;
      if (cycles & bit) {
        refuse(walk, `cycle:${name}`, `introspection not in good faith: __Type.${name} is asked again inside itself (a cycle)`, s);
        continue;
      }
      const depth = name === 'ofType' ? ofTypes + 1 : ofTypes;
      if (depth > INTROSPECTION_MAX_OF_TYPE) {
        refuse(walk, 'ofType', `introspection not in good faith: ofType nested more than ${INTROSPECTION_MAX_OF_TYPE} deep`, s);
        continue;
      }
      if (s.selectionSet) walkShape(s.selectionSet, cycles | bit, depth, walk);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      walkShape(s.selectionSet, cycles, ofTypes, walk);
    } else {
      const f = walk.fragments.get(s.name.value);
      const key = `${s.name.value}:${cycles}:${ofTypes}`;
      if (!f || walk.visited.has(key)) continue;
      walk.visited.add(key);
      walkShape(f.selectionSet, cycles, ofTypes, walk);
    }
  }
}

function refuse(walk: ShapeWalk, kind: string, message: string, node: FieldNode): void {
  if (!walk.found.has(kind)) walk.found.set(kind, new GraphQLError(message, { nodes: [node], ...code }));
}

function maxAliasesRule(max: number): ValidationRule {
  return (ctx) => {
    let aliases = 0;
    return {
      Field(node) {
        if (node.alias && ++aliases === max + 1) {
          ctx.reportError(new GraphQLError(`more than ${max} aliases in one document`, { nodes: [node], ...code }));
        }
      },
    };
  };
}

function maxDirectivesRule(max: number): ValidationRule {
  return (ctx) => {
    let directives = 0;
    return {
      Directive(node) {
        if (++directives === max + 1) {
          ctx.reportError(new GraphQLError(`more than ${max} directives in one document`, { nodes: [node], ...code }));
        }
      },
    };
  };
}

/** Lists without a size argument are assumed to hold this many items for costing. */
const DEFAULT_LIST_SIZE = 10;
/** What a paginated field returns when `first` is not given (resolvers use the same default). */
export const DEFAULT_PAGE_SIZE = 20;

/**
 * The cost of an operation: one per field resolved, multiplied through lists by their `first`
 * argument (with variables applied) or a default size. Cheap to compute and hard to game with
 * fragments, which are expanded.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | undefined,
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const root =
    operation.operation === 'query' ? schema.getQueryType() : operation.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  if (!root) return 0;
  return costOf(operation.selectionSet, root, fragments, variables ?? {}, new Set(), new Map());
}

function costOf(
  set: SelectionSetNode,
  parent: GraphQLOutputType,
  fragments: Map<string, FragmentDefinitionNode>,
  vars: Record<string, unknown>,
  seen: Set<string>,
  /** A fragment's cost on a given type, computed once: fragments spreading fragments twice over cost 2^n walks. */
  memo: Map<string, number>,
): number {
  const named = getNamedType(parent);
  const fields: Record<string, GraphQLField<unknown, unknown>> = isObjectType(named) || isInterfaceType(named) ? named.getFields() : {};
  let cost = 0;
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) {
      if (s.name.value.startsWith('__')) continue;
      const field = fields[s.name.value];
      if (!field) continue;
      const multiplier = listSize(field, s.arguments ?? [], vars);
      const inner = s.selectionSet ? costOf(s.selectionSet, field.type, fragments, vars, seen, memo) : 0;
      cost += multiplier * (1 + inner);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      cost += costOf(s.selectionSet, parent, fragments, vars, seen, memo);
    } else {
      const f = fragments.get(s.name.value);
      if (!f || seen.has(f.name.value)) continue;
      const key = `${f.name.value}:${named.name}`;
      let known = memo.get(key);
      if (known === undefined) {
        seen.add(f.name.value);
        known = costOf(f.selectionSet, parent, fragments, vars, seen, memo);
        seen.delete(f.name.value);
        memo.set(key, known);
      }
      cost += known;
    }
  }
  return cost;
}

function listSize(field: GraphQLField<unknown, unknown>, args: readonly ArgumentNode[], vars: Record<string, unknown>): number {
  const t = isNonNullType(field.type) ? field.type.ofType : field.type;
  const isEdges = field.name === 'edges';
  const first = args.find((a) => a.name.value === 'first');
  let size: number | null = null;
  if (first) {
    if (first.value.kind === Kind.INT) size = Number(first.value.value);
    else if (first.value.kind === Kind.VARIABLE) {
      const v = vars[first.value.name.value];
      if (typeof v === 'number') size = v;
    }
  }
  // A paginated field asked without `first` returns its default page.
  if (size === null && field.args.some((a) => a.name === 'first')) {
    const declared = field.args.find((a) => a.name === 'first')?.defaultValue;
    size = typeof declared === 'number' ? declared : DEFAULT_PAGE_SIZE;
  }
  // A connection's `first` sizes the whole connection, so its edges list counts once.
  if (size !== null) return Math.max(1, Math.min(size, 10_000));
  return isListType(t) && !isEdges ? DEFAULT_LIST_SIZE : 1;
}

export function costError(cost: number, max: number): GraphQLError {
  return new GraphQLError(`query cost ${cost} exceeds the limit of ${max}`, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', cost, maxCost: max } });
}

/** Strips "Did you mean …?" hints, which reveal schema names to clients in production. */
export function withoutSuggestions(message: string): string {
  return message.replace(/;? ?Did you mean [^?]*\?/g, '').trimEnd();
}
