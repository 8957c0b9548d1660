import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The GraphQL playground: GraphiQL with subscriptions over graphql-ws, every asset served from
 * node_modules so it works with no internet. Scripts come only from this origin (CSP).
 */
const require = createRequire(import.meta.url);
const ASSETS: Record<string, { pkg: string; file: string; type: string }> = {
  'graphiql.min.css': { pkg: 'graphiql', file: 'graphiql.min.css', type: 'text/css' },
  'graphiql.min.js': { pkg: 'graphiql', file: 'graphiql.min.js', type: 'text/javascript' },
  'react.production.min.js': { pkg: 'react', file: 'umd/react.production.min.js', type: 'text/javascript' },
  'react-dom.production.min.js': { pkg: 'react-dom', file: 'umd/react-dom.production.min.js', type: 'text/javascript' },
  'graphql-ws.min.js': { pkg: 'graphql-ws', file: 'umd/graphql-ws.min.js', type: 'text/javascript' },
};

const DEFAULT_QUERY = `# Paste a token printed at start-up into the Headers tab below, then run these.
mutation Create {
  createPurchaseRequest(input: {
    idempotencyKey: "playground-1"
    book: { isbn: "9780141439518" }
    maxTotalPrice: { cents: 4500, currency: "USD" }
    expiresAt: "${'${EXPIRES_AT}'}"
    shippingAddress: { name: "Ada Lovelace", line1: "1 Main St", city: "Springfield", postalCode: "12345", country: "US" }
    paymentToken: "tok_visa"
  }) {
    purchaseRequest { id status revision }
    userErrors { field code message }
  }
}

subscription Watch($id: ID!) {
  purchaseRequestUpdated(id: $id) { id status revision bestOffer { total { cents } } events { type status message } }
}
`;

const INIT_JS = `(function () {
  var url = location.origin + '/graphql';
  function headers() {
    try { return JSON.parse(localStorage.getItem('graphiql:headers') || '{}') || {}; } catch (e) { return {}; }
  }
  var wsClient = graphqlWs.createClient({
    url: url.replace(/^http/, 'ws'),
    lazy: true,
    connectionParams: function () { var h = headers(); return { authorization: h.Authorization || h.authorization }; }
  });
  var expires = new Date(Date.now() + 3600 * 1000).toISOString();
  var query = ${JSON.stringify(DEFAULT_QUERY)}.replace('\${EXPIRES_AT}', expires);
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: url, wsClient: wsClient }),
      defaultQuery: query,
      defaultHeaders: '{"Authorization": "Bearer <token printed at start-up>"}',
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: 'headers'
    })
  );
})();
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Book purchase broker · playground</title>
<link rel="stylesheet" href="/playground/graphiql.min.css">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<script src="/playground/react.production.min.js"></script>
<script src="/playground/react-dom.production.min.js"></script>
<script src="/playground/graphiql.min.js"></script>
<script src="/playground/graphql-ws.min.js"></script>
<script src="/playground/init.js"></script>
</body>
</html>
`;

const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:";
const cache = new Map<string, Buffer>();

function asset(name: string): { body: Buffer; type: string } | null {
  if (name === 'init.js') return { body: Buffer.from(INIT_JS), type: 'text/javascript' };
  const entry = ASSETS[name];
  if (!entry) return null;
  let body = cache.get(name);
  if (!body) {
    // Package `exports` hide these browser builds from require.resolve; find the package folder instead.
    body = readFileSync(join(dirname(require.resolve(`${entry.pkg}/package.json`)), entry.file));
    cache.set(name, body);
  }
  return { body, type: entry.type };
}

/** Serves the page itself (GET / or GET /graphql with Accept: text/html). */
export function servePlayground(req: IncomingMessage, res: ServerResponse): void {
  send(res, req.method === 'HEAD', 200, 'text/html; charset=utf-8', Buffer.from(PAGE));
}

/** Serves /playground/<asset>; false when the name is not one of ours. */
export function servePlaygroundAsset(name: string, req: IncomingMessage, res: ServerResponse): boolean {
  const found = asset(name);
  if (!found) return false;
  send(res, req.method === 'HEAD', 200, `${found.type}; charset=utf-8`, found.body, 'public, max-age=3600');
  return true;
}

function send(res: ServerResponse, head: boolean, status: number, type: string, body: Buffer, cacheControl = 'no-cache'): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': cacheControl,
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : body);
}
