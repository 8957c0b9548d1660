import { GraphQLError } from 'graphql';
import type { ErrorCode, UserError } from '../domain/errors.js';
import type { Viewer } from '../domain/types.js';
import type { Context } from './context.js';

export function gqlError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code } });
}

/** The caller, or UNAUTHENTICATED when no valid token came with the operation. */
export function requireViewer(ctx: Context): Viewer {
  if (ctx.viewer === null) throw gqlError('UNAUTHENTICATED', 'a bearer token is required');
  if (ctx.viewer === 'invalid') throw gqlError('UNAUTHENTICATED', 'the bearer token is invalid or expired');
  return ctx.viewer;
}

export function requireAdmin(ctx: Context): Viewer {
  const viewer = requireViewer(ctx);
  if (viewer.role !== 'admin') throw gqlError('FORBIDDEN', 'this operation is for admins only');
  return viewer;
}

/** Payload shape shared by every mutation: the entity on success, userErrors otherwise. */
export function payload<K extends string, T>(
  key: K,
  outcome: { ok: true; value: T } | { ok: false; errors: UserError[] },
): Record<K, T | null> & { userErrors: UserError[] } {
  return (outcome.ok ? { [key]: outcome.value, userErrors: [] } : { [key]: null, userErrors: outcome.errors }) as Record<
    K,
    T | null
  > & { userErrors: UserError[] };
}
