import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManifestError, TRUSTED_DOCUMENT_CODES, TrustedDocuments } from './trusted-documents.js';

const ME = 'query Me { purchaseRequests(first: 1) { edges { node { id } } } }';
const WATCH = 'subscription W($id: ID!) { purchaseRequestUpdated(id: $id) { id status } }';
const hex = (text: string) => createHash('sha256').update(text).digest('hex');
const manifest = { [`sha256:${hex(ME)}`]: ME, [`sha256:${hex(WATCH)}`]: WATCH };
const trusted = TrustedDocuments.fromManifest(manifest);

const codeOf = (v: ReturnType<TrustedDocuments['resolve']>) => (v.ok ? null : v.error.extensions.code);

describe('resolving a request', () => {
  it('gives the manifest text for a documentId, with or without the sha256: prefix', () => {
    expect(trusted.resolve({ documentId: `sha256:${hex(ME)}` })).toEqual({ ok: true, query: ME });
    expect(trusted.resolve({ documentId: hex(WATCH) })).toEqual({ ok: true, query: WATCH });
  });

  it("gives the manifest text for Apollo's extensions.persistedQuery.sha256Hash", () => {
    expect(trusted.resolve({ extensions: { persistedQuery: { version: 1, sha256Hash: hex(ME) } } })).toEqual({ ok: true, query: ME });
  });

  it('accepts text that is a manifest document, character for character', () => {
    expect(trusted.resolve({ query: WATCH })).toEqual({ ok: true, query: WATCH });
    expect(trusted.resolve({ query: WATCH, documentId: `sha256:${hex(WATCH)}` })).toEqual({ ok: true, query: WATCH });
  });

  it('refuses an unknown id with PERSISTED_QUERY_NOT_FOUND', () => {
    const v = trusted.resolve({ documentId: `sha256:${hex('query X { __typename }')}` });
    expect(codeOf(v)).toBe(TRUSTED_DOCUMENT_CODES.unknownId);
    expect(codeOf(trusted.resolve({ extensions: { persistedQuery: { version: 1, sha256Hash: 'nope' } } }))).toBe('PERSISTED_QUERY_NOT_FOUND');
  });

  it('refuses other text with QUERY_NOT_IN_SAFELIST, even the same operation spelled differently', () => {
    expect(codeOf(trusted.resolve({ query: '{ __typename }' }))).toBe('QUERY_NOT_IN_SAFELIST');
    expect(codeOf(trusted.resolve({ query: `${ME} ` }))).toBe('QUERY_NOT_IN_SAFELIST');
    // An id cannot vouch for text that is not in the manifest.
    expect(codeOf(trusted.resolve({ query: '{ __typename }', documentId: `sha256:${hex(ME)}` }))).toBe('QUERY_NOT_IN_SAFELIST');
  });

  it('refuses trusted text sent with the id of another document', () => {
    expect(codeOf(trusted.resolve({ query: ME, documentId: `sha256:${hex(WATCH)}` }))).toBe('BAD_REQUEST');
  });

  it('leaves a request that names no document to the transport', () => {
    expect(trusted.resolve({})).toEqual({ ok: true, query: undefined });
    expect(trusted.resolve({ query: '' })).toEqual({ ok: true, query: undefined });
  });
});

describe('reading a manifest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trusted-documents-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('reads the client preset format', () => {
    const docs = TrustedDocuments.fromFile(file('ok.json', JSON.stringify(manifest, null, 2)));
    expect(docs.size).toBe(2);
    expect(docs.resolve({ documentId: `sha256:${hex(ME)}` })).toEqual({ ok: true, query: ME });
  });

  it.each([
    ['missing', join(dir, 'absent.json'), /no file at .*absent\.json/],
    ['not JSON', file('bad.json', '{"a": '), /is not JSON/],
    ['an array', file('array.json', '[]'), /must be a JSON object/],
    ['empty', file('empty.json', '{}'), /holds no documents/],
    ['a non-string document', file('number.json', '{"a": 1}'), /document a is not a string/],
    ['a document that is not GraphQL', file('garbage.json', '{"a": "query {"}'), /document a is not GraphQL/],
  ])('refuses a manifest that is %s, saying why', (_what, path, message) => {
    expect(() => TrustedDocuments.fromFile(path)).toThrow(ManifestError);
    expect(() => TrustedDocuments.fromFile(path)).toThrow(message);
  });
});
