import type { Server } from 'node:http';
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  type ValidationRule,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import type { Viewer } from '../domain/types.js';
import { type Context, type Services, makeContext } from '../resolvers/context.js';
import type { Auth } from './auth.js';
import { type ErrorFormatter, formatErrors } from './errors.js';
import { costError, operationCost, withoutSuggestions } from './query-limits.js';
import { sharedSubscribe } from './shared-pushes.js';
import type { TrustedDocuments } from './trusted-documents.js';

/** Distinct operation texts whose parse and validation are kept (the oldest goes first). */
const VALID_DOCUMENTS_KEPT = 500;

export interface WsOptions {
  server: Server;
  path: string;
  schema: GraphQLSchema;
  services: Services;
  auth: Auth;
  log: Logger;
  formatError: ErrorFormatter;
  validationRules: readonly ValidationRule[];
  connectionInitTimeoutMs: number;
  maxPayloadBytes: number;
  maxTokens: number;
  maxCost: number;
  hideSchemaDetails: boolean;
  maxSubscriptionsPerConnection: number;
  maxConnectionsPerUser: number;
  /** Browser origins allowed to connect; empty allows any. */
  allowedOrigins: readonly string[];
  /** When set, only these documents run: named by id (`documentId`, or `extensions.persistedQuery.sha256Hash` with an empty `query`) or sent as their exact text. */
  trustedDocuments?: TrustedDocuments;
}

/** RFC 6455 §7.4 (IANA registry): the server is restarting; a client may reconnect at once. */
const SERVICE_RESTART = 1012;

// A type alias, not an interface: graphql-ws wants an index-signature-compatible record.
type Extra = { viewer?: Viewer; counted?: boolean };

export interface WsHandle {
  clients(): number;
  /**
   * Stops accepting sockets and closes every open one with 1012 Service Restart, which
   * graphql-ws clients retry (reconnecting, behind a load balancer, to another instance); a
   * socket that has not finished its closing handshake within `graceMs` is cut.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * graphql-ws on the HTTP server's port. graphql-ws does not run Apollo's plugins, so this
 * adapter applies the same authentication, validation rules and error masking itself, and
 * serves subscriptions only: queries and mutations go over HTTP, where every limit applies.
 */
export function attachGraphQLWs(o: WsOptions): WsHandle {
  const wss = new WebSocketServer({
    server: o.server,
    path: o.path,
    maxPayload: o.maxPayloadBytes,
    // A browser page from another origin must not ride on a user's credentials; clients that
    // are not browsers send no Origin and are judged by their token alone.
    verifyClient: ({ origin }: { origin?: string }) => o.allowedOrigins.length === 0 || !origin || o.allowedOrigins.includes(origin),
  });
  const rules = [...specifiedRules, ...o.validationRules];
  // Clients send the same few operations again and again (one subscription per request): parse
  // and validate each text once, as Apollo's document store does over HTTP. Variables, limits
  // per connection and cost are still checked on every subscribe.
  const validDocuments = new Map<string, DocumentNode>();
  const rememberValid = (query: string, document: DocumentNode) => {
    if (validDocuments.size >= VALID_DOCUMENTS_KEPT) validDocuments.delete(validDocuments.keys().next().value!);
    validDocuments.set(query, document);
  };
  const perUser = new Map<string, number>();
  const hide = (errors: readonly GraphQLError[]) =>
    o.hideSchemaDetails ? errors.map((e) => new GraphQLError(withoutSuggestions(e.message), { nodes: e.nodes, extensions: e.extensions })) : errors;
  const disposable = useServer<Record<string, unknown> | undefined, Extra>(
    {
      schema: o.schema,
      // Many watchers of one request, as one user's devices and tabs are: each state is executed
      // once for all of them that run the same operation.
      subscribe: sharedSubscribe((args, payload) => {
        const viewer = (args.contextValue as Context).viewer;
        const state = payload as { id?: unknown; revision?: unknown };
        if (!viewer || viewer === 'invalid' || typeof state.id !== 'string' || typeof state.revision !== 'number') return null;
        return `${viewer.id}\u0000${viewer.role}\u0000${state.id}\u0000${state.revision}`;
      }),
      connectionInitWaitTimeout: o.connectionInitTimeoutMs,
      async onConnect(ctx) {
        const header = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        const viewer = await o.auth.viewerFrom(header);
        // No or bad token: refuse the connection with 4403, saying why as HTTP does (graphql-ws
        // alone would say only "Forbidden").
        if (viewer === null || viewer === 'invalid') {
          ctx.extra.socket.close(4403, viewer === null ? 'a bearer token is required' : 'the bearer token is invalid or expired');
          return false;
        }
        const open = perUser.get(viewer.id) ?? 0;
        if (open >= o.maxConnectionsPerUser) {
          ctx.extra.socket.close(4429, 'Too many connections');
          return false;
        }
        perUser.set(viewer.id, open + 1);
        ctx.extra.counted = true;
        ctx.extra.viewer = viewer;
        return true;
      },
      onClose(ctx) {
        const viewer = ctx.extra.viewer;
        if (!viewer || !ctx.extra.counted) return;
        const left = (perUser.get(viewer.id) ?? 1) - 1;
        if (left <= 0) perUser.delete(viewer.id);
        else perUser.set(viewer.id, left);
      },
      onSubscribe(ctx, _id, payload) {
        let query = payload.query;
        if (o.trustedDocuments) {
          // graphql-ws requires a string `query`; a subscribe by id sends '' and names the document.
          const verdict = o.trustedDocuments.resolve(payload as typeof payload & { documentId?: unknown });
          if (!verdict.ok) return [verdict.error];
          query = verdict.query ?? query;
        }
        const known = validDocuments.get(query);
        let document = known;
        if (!document) {
          try {
            document = parse(query, { maxTokens: o.maxTokens });
          } catch (e) {
            return [e instanceof GraphQLError ? withCode(e, 'GRAPHQL_PARSE_FAILED') : new GraphQLError('could not parse the operation')];
          }
        }
        if (Object.keys(ctx.subscriptions).length > o.maxSubscriptionsPerConnection) {
          return [withCode(new GraphQLError(`at most ${o.maxSubscriptionsPerConnection} subscriptions per connection`), 'BAD_REQUEST')];
        }
        if (!known) {
          const errors = validate(o.schema, document, rules);
          if (errors.length > 0) return hide(errors).map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
          rememberValid(query, document);
        }
        const op = getOperationAST(document, payload.operationName);
        if (!op) return [withCode(new GraphQLError('could not identify the operation to run'), 'BAD_REQUEST')];
        if (op.operation !== 'subscription') {
          return [withCode(new GraphQLError('only subscriptions are served over WebSocket; send queries and mutations over HTTP'), 'BAD_REQUEST')];
        }
        // Coerce variables here, as Apollo does over HTTP, so bad ones are BAD_USER_INPUT and not
        // execution errors without a code (which would be masked as internal).
        const coerced = getVariableValues(o.schema, op.variableDefinitions ?? [], payload.variables ?? {}, { maxErrors: 25 });
        if (coerced.errors) return hide(coerced.errors).map((e) => withCode(e, 'BAD_USER_INPUT'));
        const cost = operationCost(o.schema, document, op, payload.variables ?? {});
        if (cost > o.maxCost) return [costError(cost, o.maxCost)];
        return {
          schema: o.schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: makeContext(o.services, ctx.extra.viewer ?? null),
        };
      },
      onNext(_ctx, _id, _payload, _args, result) {
        if (!result.errors) return;
        return { ...result, errors: formatErrors(result.errors, o.formatError) };
      },
      onError(_ctx, _id, _payload, errors) {
        return formatErrors(errors, o.formatError);
      },
    },
    wss,
  );
  wss.on('error', (err) => o.log.error({ err }, 'websocket server error'));

  return {
    clients: () => wss.clients.size,
    close: async (graceMs = 1_000) => {
      // Not 1001 Going Away (graphql-ws' own on dispose): 1012 says the service is back shortly.
      for (const socket of wss.clients) socket.close(SERVICE_RESTART, 'Service restart');
      const cut = setTimeout(() => {
        for (const socket of wss.clients) socket.terminate();
      }, graceMs);
      try {
        await disposable.dispose();
      } finally {
        clearTimeout(cut);
      }
    },
  };
}

function withCode(e: GraphQLError, code: string): GraphQLError {
  if (e.extensions.code) return e;
  return new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, path: e.path, originalError: e.originalError, extensions: { ...e.extensions, code } });
}

