import {
  type ArgumentNode,
  type ASTVisitor,
  type DocumentNode,
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
  return [maxDepthRule(limits.maxDepth), maxAliasesRule(limits.maxAliases), maxDirectivesRule(limits.maxDirectives)];
}

function maxDepthRule(max: number): ValidationRule {
  return (ctx: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of ctx.getDocument().definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    return {
      OperationDefinition(op) {
        const depth = depthOf(op.selectionSet, fragments, new Set(), 0);
        if (depth > max) ctx.reportError(new GraphQLError(`query depth ${depth} exceeds the limit of ${max}`, { nodes: [op], ...code }));
      },
    };
  };
}

function depthOf(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>, depth: number): number {
  let max = depth;
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) {
      if (s.name.value.startsWith('__')) continue; // introspection is bounded by the schema itself
      max = Math.max(max, s.selectionSet ? depthOf(s.selectionSet, fragments, seen, depth + 1) : depth + 1);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      max = Math.max(max, depthOf(s.selectionSet, fragments, seen, depth));
    } else {
      const f = fragments.get(s.name.value);
      if (!f || seen.has(f.name.value)) continue; // cycles are reported by the standard rules
      seen.add(f.name.value);
      max = Math.max(max, depthOf(f.selectionSet, fragments, seen, depth));
      seen.delete(f.name.value);
    }
  }
  return max;
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
  return costOf(operation.selectionSet, root, fragments, variables ?? {}, new Set());
}

function costOf(
  set: SelectionSetNode,
  parent: GraphQLOutputType,
  fragments: Map<string, FragmentDefinitionNode>,
  vars: Record<string, unknown>,
  seen: Set<string>,
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
      const inner = s.selectionSet ? costOf(s.selectionSet, field.type, fragments, vars, seen) : 0;
      cost += multiplier * (1 + inner);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      cost += costOf(s.selectionSet, parent, fragments, vars, seen);
    } else {
      const f = fragments.get(s.name.value);
      if (!f || seen.has(f.name.value)) continue;
      seen.add(f.name.value);
      cost += costOf(f.selectionSet, parent, fragments, vars, seen);
      seen.delete(f.name.value);
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
