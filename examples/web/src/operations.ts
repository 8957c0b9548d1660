import { graphql } from './gql';

// Every operation the app sends. `npm run codegen` types each one (a TypedDocumentNode: data and
// variables checked at compile time) and writes its text to gql/persisted-documents.json, the
// manifest a broker started with TRUSTED_DOCUMENTS accepts — and nothing else.

export const RequestFieldsFragment = graphql(`
  fragment RequestFields on PurchaseRequest {
    id
    status
    revision
    failureReason
    createdAt
    book {
      isbn
      title
    }
    maxTotalPrice {
      cents
      currency
    }
    bestOffer {
      total {
        cents
        currency
      }
      seller {
        name
      }
    }
    order {
      sellerOrderId
      total {
        cents
        currency
      }
      seller {
        name
      }
    }
    events {
      id
      at
      type
      status
      message
      revision
    }
  }
`);

/** Signing in: a token is good when this answers without UNAUTHENTICATED. */
export const RecentRequestsDocument = graphql(`
  query RecentRequests($first: Int!) {
    purchaseRequests(first: $first) {
      edges {
        node {
          ...RequestFields
        }
      }
    }
  }
`);

export const CreateRequestDocument = graphql(`
  mutation CreateRequest($input: CreatePurchaseRequestInput!) {
    createPurchaseRequest(input: $input) {
      purchaseRequest {
        ...RequestFields
      }
      userErrors {
        field
        message
        code
      }
    }
  }
`);

/** The request's state now, then after every change; completes after a terminal status. */
export const WatchRequestDocument = graphql(`
  subscription WatchRequest($id: ID!, $afterRevision: Int) {
    purchaseRequestUpdated(id: $id, afterRevision: $afterRevision) {
      ...RequestFields
    }
  }
`);
