/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment RequestFields on PurchaseRequest {\n    id\n    status\n    revision\n    failureReason\n    createdAt\n    book {\n      isbn\n      title\n    }\n    maxTotalPrice {\n      cents\n      currency\n    }\n    bestOffer {\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    order {\n      sellerOrderId\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    events {\n      id\n      at\n      type\n      status\n      message\n      revision\n    }\n  }\n": typeof types.RequestFieldsFragmentDoc,
    "\n  query RecentRequests($first: Int!) {\n    purchaseRequests(first: $first) {\n      edges {\n        node {\n          ...RequestFields\n        }\n      }\n    }\n  }\n": typeof types.RecentRequestsDocument,
    "\n  mutation CreateRequest($input: CreatePurchaseRequestInput!) {\n    createPurchaseRequest(input: $input) {\n      purchaseRequest {\n        ...RequestFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n": typeof types.CreateRequestDocument,
    "\n  subscription WatchRequest($id: ID!, $afterRevision: Int) {\n    purchaseRequestUpdated(id: $id, afterRevision: $afterRevision) {\n      ...RequestFields\n    }\n  }\n": typeof types.WatchRequestDocument,
};
const documents: Documents = {
    "\n  fragment RequestFields on PurchaseRequest {\n    id\n    status\n    revision\n    failureReason\n    createdAt\n    book {\n      isbn\n      title\n    }\n    maxTotalPrice {\n      cents\n      currency\n    }\n    bestOffer {\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    order {\n      sellerOrderId\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    events {\n      id\n      at\n      type\n      status\n      message\n      revision\n    }\n  }\n": types.RequestFieldsFragmentDoc,
    "\n  query RecentRequests($first: Int!) {\n    purchaseRequests(first: $first) {\n      edges {\n        node {\n          ...RequestFields\n        }\n      }\n    }\n  }\n": types.RecentRequestsDocument,
    "\n  mutation CreateRequest($input: CreatePurchaseRequestInput!) {\n    createPurchaseRequest(input: $input) {\n      purchaseRequest {\n        ...RequestFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n": types.CreateRequestDocument,
    "\n  subscription WatchRequest($id: ID!, $afterRevision: Int) {\n    purchaseRequestUpdated(id: $id, afterRevision: $afterRevision) {\n      ...RequestFields\n    }\n  }\n": types.WatchRequestDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment RequestFields on PurchaseRequest {\n    id\n    status\n    revision\n    failureReason\n    createdAt\n    book {\n      isbn\n      title\n    }\n    maxTotalPrice {\n      cents\n      currency\n    }\n    bestOffer {\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    order {\n      sellerOrderId\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    events {\n      id\n      at\n      type\n      status\n      message\n      revision\n    }\n  }\n"): (typeof documents)["\n  fragment RequestFields on PurchaseRequest {\n    id\n    status\n    revision\n    failureReason\n    createdAt\n    book {\n      isbn\n      title\n    }\n    maxTotalPrice {\n      cents\n      currency\n    }\n    bestOffer {\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    order {\n      sellerOrderId\n      total {\n        cents\n        currency\n      }\n      seller {\n        name\n      }\n    }\n    events {\n      id\n      at\n      type\n      status\n      message\n      revision\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query RecentRequests($first: Int!) {\n    purchaseRequests(first: $first) {\n      edges {\n        node {\n          ...RequestFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query RecentRequests($first: Int!) {\n    purchaseRequests(first: $first) {\n      edges {\n        node {\n          ...RequestFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateRequest($input: CreatePurchaseRequestInput!) {\n    createPurchaseRequest(input: $input) {\n      purchaseRequest {\n        ...RequestFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateRequest($input: CreatePurchaseRequestInput!) {\n    createPurchaseRequest(input: $input) {\n      purchaseRequest {\n        ...RequestFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription WatchRequest($id: ID!, $afterRevision: Int) {\n    purchaseRequestUpdated(id: $id, afterRevision: $afterRevision) {\n      ...RequestFields\n    }\n  }\n"): (typeof documents)["\n  subscription WatchRequest($id: ID!, $afterRevision: Int) {\n    purchaseRequestUpdated(id: $id, afterRevision: $afterRevision) {\n      ...RequestFields\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;