import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { type Client, createClient } from 'graphql-ws';

/** A GraphQL error as the broker sends it: `extensions.code` is the stable part (API.md). */
export interface BrokerError {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

export interface Result<T> {
  data?: T | null;
  errors?: readonly BrokerError[];
}

export const codeOf = (result: Result<unknown>): string | undefined => result.errors?.[0]?.extensions?.code;

/**
 * The broker's two transports, typed by the documents graphql-codegen generated: queries and
 * mutations over HTTP (fetch), subscriptions over graphql-ws, both signed in with the token.
 *
 * Operations go by id, as a shipped app sends them: the id codegen embedded in each document
 * (also the key of gql/persisted-documents.json). They use Apollo's extensions.persistedQuery
 * form because a broker without TRUSTED_DOCUMENTS (stock Apollo Server) answers it with
 * PERSISTED_QUERY_NOT_FOUND: the cue to send the document's text from then on, so the same app
 * works against `npm start` in development.
 */
export class BrokerClient {
  private byId = true;
  private readonly ws: Client;

  constructor(
    private readonly token: string,
    private readonly endpoint = '/graphql',
  ) {
    const url = new URL(endpoint, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.ws = createClient({
      url: url.href,
      lazy: true,
      connectionParams: { authorization: `Bearer ${token}` },
      // A restarting broker closes sockets with 1012 and is back shortly: resubscribe then.
      retryAttempts: 5,
    });
  }

  async execute<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<Result<R>> {
    if (this.byId) {
      const result = await this.post<R>({ extensions: persistedQuery(document), variables });
      if (codeOf(result) !== 'PERSISTED_QUERY_NOT_FOUND') return result;
      this.byId = false;
    }
    return this.post<R>({ query: print(document), variables });
  }

  /** Calls `onResult` with every state the subscription sends; returns the unsubscribe. */
  subscribe<R, V>(document: TypedDocumentNode<R, V>, variables: V, sink: { next(result: Result<R>): void; done(error?: unknown): void }): () => void {
    // graphql-ws requires a `query` string: empty when the document goes by id.
    const payload = this.byId
      ? { query: '', extensions: persistedQuery(document), variables: variables as Record<string, unknown> }
      : { query: print(document), variables: variables as Record<string, unknown> };
    return this.ws.subscribe<R>(payload, {
      next: (result) => sink.next(result as Result<R>),
      error: (error) => sink.done(error),
      complete: () => sink.done(),
    });
  }

  dispose(): void {
    void this.ws.dispose();
  }

  private async post<R>(body: Record<string, unknown>): Promise<Result<R>> {
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
        body: JSON.stringify(body),
      });
    } catch (e) {
      return { errors: [{ message: `the broker cannot be reached: ${(e as Error).message}`, extensions: { code: 'UNREACHABLE' } }] };
    }
    const type = response.headers.get('content-type') ?? '';
    if (!type.includes('json')) return { errors: [{ message: `the broker answered ${response.status} ${response.statusText}`, extensions: { code: 'UNREACHABLE' } }] };
    return (await response.json()) as Result<R>;
  }
}

/** Apollo's id form: the hex SHA-256 that the client preset wrote as "sha256:<hex>". */
function persistedQuery(document: object): { persistedQuery: { version: 1; sha256Hash: string } } {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
  if (!hash?.startsWith('sha256:')) throw new Error('this document has no persisted id: run `npm run codegen`');
  return { persistedQuery: { version: 1, sha256Hash: hash.slice('sha256:'.length) } };
}
