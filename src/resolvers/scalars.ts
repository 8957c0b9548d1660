import { GraphQLScalarType, Kind, type ValueNode, valueFromASTUntyped } from 'graphql';
import { gqlError } from './errors.js';

// Date-times must carry a zone (Z or ±hh:mm) so a deadline never depends on the server's zone.
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseDateTime(value: unknown): Date {
  if (typeof value !== 'string' || value.length > 40 || !ISO_DATE_TIME.test(value)) {
    throw gqlError('BAD_USER_INPUT', 'DateTime must be an ISO-8601 date-time with a zone, e.g. 2026-11-22T10:00:00Z');
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw gqlError('BAD_USER_INPUT', 'DateTime is not a valid date');
  return date;
}

export const DateTime = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'ISO-8601 date-time string, UTC on output ("2026-11-22T10:00:00.000Z").',
  serialize(value) {
    if (value instanceof Date) return value.toISOString();
    if (typeof value === 'string') return new Date(value).toISOString();
    throw new TypeError('DateTime cannot represent this value');
  },
  parseValue: parseDateTime,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw gqlError('BAD_USER_INPUT', 'DateTime must be a string');
    return parseDateTime(ast.value);
  },
});

export const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast: ValueNode, variables) => valueFromASTUntyped(ast, variables),
});
