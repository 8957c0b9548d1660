import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ApolloServerPlugin, GraphQLRequest } from '@apollo/server';
import { GraphQLError, parse } from 'graphql';

/**
 * Trusted documents (TRUSTED_DOCUMENTS=path): the server runs only the operations its own
 * clients were built with, read at boot from a persisted-documents manifest — a JSON object of
 * document id → document text, as graphql-codegen's client preset writes it.
 *
 * A client names a document by id instead of sending its text: `documentId` (GraphQL over HTTP,
 * Appendix A, "sha256:<hex>") or `extensions.persistedQuery.sha256Hash` (Apollo's convention).
 * Text is accepted only when its SHA-256 is the hash of a manifest document.
 */

/** Public codes. The first is Apollo Server's own for an unknown id, which Apollo clients know. */
export const TRUSTED_DOCUMENT_CODES = {
  /** An id that names no document in the manifest. */
  unknownId: 'PERSISTED_QUERY_NOT_FOUND',
  /** Operation text that is not, character for character, a manifest document (Apollo Router's safelist code). */
  notInSafelist: 'QUERY_NOT_IN_SAFELIST',
} as const;

/** What a client sent: the operation text and/or a document id, in any of the accepted forms. */
export interface DocumentRequest {
  query?: unknown;
  documentId?: unknown;
  extensions?: Record<string, unknown> | null;
}

/**
 * `query`: the text to run — the manifest's, for a request by id; undefined when the request
 * named no document at all (the transport answers that as it always does).
 */
export type Verdict = { ok: true; query: string | undefined } | { ok: false; error: GraphQLError };

export class ManifestError extends Error {
  override name = 'ManifestError';
}

const SHA256_ID = /^sha256:([0-9a-f]{64})$/;

export class TrustedDocuments {
  /** Document text by manifest id. */
  private readonly byId: ReadonlyMap<string, string>;
  /** Document text by the hex SHA-256 of that text. */
  private readonly bySha256: ReadonlyMap<string, string>;

  private constructor(byId: Map<string, string>) {
    this.byId = byId;
    this.bySha256 = new Map([...byId.values()].map((text) => [sha256(text), text]));
  }

  /** Reads and checks a manifest file; every problem is a ManifestError saying what to fix. */
  static fromFile(path: string): TrustedDocuments {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ManifestError(code === 'ENOENT' ? `no file at ${path}` : `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ManifestError(`${path} is not JSON: ${(e as Error).message}`, { cause: e });
    }
    return TrustedDocuments.fromManifest(json, path);
  }

  /** Checks a parsed manifest: a non-empty object of id → GraphQL document text. */
  static fromManifest(manifest: unknown, source = 'the manifest'): TrustedDocuments {
    if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
      throw new ManifestError(`${source} must be a JSON object of document id → document text`);
    }
    const byId = new Map<string, string>();
    for (const [id, text] of Object.entries(manifest)) {
      if (id === '') throw new ManifestError(`${source} has an empty document id`);
      if (typeof text !== 'string') throw new ManifestError(`${source}: document ${id} is not a string`);
      try {
        parse(text);
      } catch (e) {
        throw new ManifestError(`${source}: document ${id} is not GraphQL: ${(e as Error).message}`, { cause: e });
      }
      byId.set(id, text);
    }
    if (byId.size === 0) throw new ManifestError(`${source} holds no documents`);
    return new TrustedDocuments(byId);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Decides one request: the text to run, or the error to answer with. Never throws. */
  resolve(request: DocumentRequest): Verdict {
    const id = documentIdOf(request);
    const text = typeof request.query === 'string' && request.query !== '' ? request.query : undefined;
    if (text !== undefined) {
      const trusted = this.bySha256.get(sha256(text));
      if (trusted === undefined) {
        return refuse(TRUSTED_DOCUMENT_CODES.notInSafelist, 'this server runs only its trusted documents, and this operation text is not one of them: send the id of a document from its manifest');
      }
      if (id !== undefined && this.lookup(id) !== trusted) {
        return refuse('BAD_REQUEST', 'the document id does not name the operation text sent with it');
      }
      return { ok: true, query: trusted };
    }
    if (id === undefined) return { ok: true, query: undefined };
    const byId = this.lookup(id);
    if (byId === undefined) return refuse(TRUSTED_DOCUMENT_CODES.unknownId, `no trusted document has the id ${JSON.stringify(id)}`);
    return { ok: true, query: byId };
  }

  private lookup(id: string): string | undefined {
    const hex = SHA256_ID.exec(id)?.[1] ?? (/^[0-9a-f]{64}$/.test(id) ? id : undefined);
    return this.byId.get(id) ?? (hex === undefined ? undefined : this.bySha256.get(hex));
  }
}

/**
 * Apollo Server: requests by id get the manifest's text before Apollo reads the request, and
 * anything else untrusted is refused. Apollo turns an error thrown before `didResolveOperation`
 * into a 500, so a refused request has its text swapped for a constant one-field document (the
 * sender's text is never parsed) and is refused at that hook, with its code and a 400.
 */
export function trustedDocumentsPlugin<C extends object>(trusted: TrustedDocuments): ApolloServerPlugin<C> {
  return {
    async requestDidStart({ request }) {
      const verdict = trusted.resolve({ query: request.query, documentId: httpDocumentId(request), extensions: request.extensions });
      // Ids are resolved here: Apollo's own persisted-query handling must not see them, nor
      // register text a client sends along with a hash.
      if (request.extensions?.persistedQuery !== undefined) {
        const { persistedQuery: _resolved, ...rest } = request.extensions;
        request.extensions = rest;
      }
      if (verdict.ok) {
        if (verdict.query !== undefined) request.query = verdict.query;
        return;
      }
      request.query = REFUSED_PLACEHOLDER;
      request.operationName = undefined;
      const { message, extensions } = verdict.error;
      const error = new GraphQLError(message, { extensions: { ...extensions, http: { status: 400 } } });
      return {
        async didResolveOperation() {
          throw error;
        },
      };
    },
  };
}

const REFUSED_PLACEHOLDER = '{ __typename }';

/** `documentId` from a POST body or the query string of a GET. */
function httpDocumentId(request: GraphQLRequest): unknown {
  const http = request.http;
  if (!http) return undefined;
  if (http.method === 'GET') return new URLSearchParams(http.search).get('documentId') ?? undefined;
  const body = http.body;
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>).documentId : undefined;
}

function documentIdOf(request: DocumentRequest): string | undefined {
  if (typeof request.documentId === 'string' && request.documentId !== '') return request.documentId;
  const persisted = request.extensions?.persistedQuery;
  if (persisted !== null && typeof persisted === 'object') {
    const hash = (persisted as Record<string, unknown>).sha256Hash;
    if (typeof hash === 'string' && hash !== '') return hash;
  }
  return undefined;
}

function refuse(code: string, message: string): Verdict {
  return { ok: false, error: new GraphQLError(message, { extensions: { code } }) };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
