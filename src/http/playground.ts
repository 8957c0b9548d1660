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

/**
 * The page's example operations. `$idempotencyKey`, `$expiresAt` and `$id` are variables the page
 * fills in (INIT_JS) when the Variables tab leaves them out: a fixed key in the text made every
 * second Create return the first request (or IDEMPOTENCY_KEY_REUSED), and copying ids by hand
 * into Watch came too late to see the request live.
 */
const DEFAULT_QUERY = `# The book purchase broker's playground, in three steps.
#
# 1. Sign in: paste a token printed at start-up into the Headers tab below, as
#    {"Authorization": "Bearer <token>"}. Printed tokens survive restarts (the
#    generated secret is kept in DATA_DIR), for 7 days.
#
# 2. Run Create (the ▶ button, then "Create"). Every run makes a new request:
#    when the Variables tab gives no "idempotencyKey", this page fills
#    $idempotencyKey with a fresh UUID (crypto.randomUUID()), and $expiresAt with
#    an hour from now. To see a retried create answered with the same request,
#    give both yourself: {"idempotencyKey": "mine-1", "expiresAt": "..."}.
#
# 3. Run Watch: when the Variables tab gives no "id", this page fills $id with
#    the request Create made last, so its lifecycle streams in as it happens
#    (PENDING → SEARCHING → QUOTED → ORDERING → ORDERED); "events" lists every
#    step, including those before you pressed ▶.
#
# Values the page filled in are shown under "extensions" → "playground".

mutation Create($idempotencyKey: String!, $expiresAt: DateTime!) {
  createPurchaseRequest(input: {
    idempotencyKey: $idempotencyKey
    book: { isbn: "9780141439518" }
    maxTotalPrice: { cents: 4500, currency: "USD" }
    expiresAt: $expiresAt
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

/**
 * The page's own fetcher, in place of GraphiQL.createFetcher: it fills the variables above,
 * remembers the last request created, and turns refusals into one readable line (GraphiQL would
 * show "Socket closed with event 4403" and a stack, after graphql-ws had retried 4403 — which it
 * treats as possibly temporary — for most of a minute).
 */
const INIT_JS = `(function () {
  'use strict';
  var url = location.origin + '/graphql';
  var wsUrl = url.replace(/^http/, 'ws');
  var LAST_ID = 'broker:lastRequestId';
  // No quotes: the result pane shows JSON, where they would come out escaped.
  var SIGN_IN = 'paste a token printed at start-up into the Headers tab, as Authorization: Bearer <token>';
  // Closes that are answers, not outages: retrying them only delays the message.
  var FINAL_CLOSE_CODES = [4400, 4401, 4403, 4406, 4409, 4429, 4500];

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // Pages served over plain http to another host are not a secure context: no randomUUID there.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function storedHeaders() {
    try { return JSON.parse(localStorage.getItem('graphiql:headers') || '{}') || {}; } catch (e) { return {}; }
  }

  function authorization(headers) {
    for (var k in headers) if (k.toLowerCase() === 'authorization') return headers[k];
    return undefined;
  }

  function notSignedIn(headers) {
    var h = authorization(headers);
    if (typeof h !== 'string' || h.trim() === '' || h.indexOf('<token') >= 0) return 'Not signed in: ' + SIGN_IN + '.';
    return 'Not signed in: the broker refused the token in the Headers tab (malformed, expired, or made with another secret); ' + SIGN_IN + '.';
  }

  /** The operation GraphiQL runs: its keyword and variable definitions, read at the top level of the text. */
  function operation(query, name) {
    var text = query.replace(/"""[\\s\\S]*?"""|"(?:[^"\\\\\\n]|\\\\.)*"|#[^\\n]*/g, '""');
    var re = /[{}]|\\b(query|mutation|subscription)\\b\\s*([_A-Za-z][_0-9A-Za-z]*)?\\s*(\\([^)]*\\))?/g;
    var depth = 0, first = null, m;
    while ((m = re.exec(text))) {
      if (m[0] === '{') { if (depth === 0 && !first) first = { type: 'query', name: undefined, variables: '' }; depth++; continue; }
      if (m[0] === '}') { depth--; continue; }
      if (depth !== 0) continue;
      var op = { type: m[1], name: m[2], variables: m[3] || '' };
      if (!first) first = op;
      if (name && op.name === name) return op;
    }
    return first || { type: 'query', name: name, variables: '' };
  }

  /** Fills the variables the example operations leave to the page; returns what it filled. */
  function fill(op, variables) {
    var filled = {};
    var declares = function (v) { return new RegExp('\\\\$' + v + '\\\\b').test(op.variables); };
    if (declares('idempotencyKey') && !variables.idempotencyKey) filled.idempotencyKey = uuid();
    if (declares('expiresAt') && !variables.expiresAt) filled.expiresAt = new Date(Date.now() + 3600 * 1000).toISOString();
    if (declares('id') && !variables.id) {
      var last = localStorage.getItem(LAST_ID);
      if (last) filled.id = last;
    }
    return filled;
  }

  function shown(result, filled, headers) {
    var out = Object.assign({}, result);
    if (out.errors && out.errors.some(function (e) { return e && e.extensions && e.extensions.code === 'UNAUTHENTICATED'; })) {
      var others = out.errors.filter(function (e) { return !(e && e.extensions && e.extensions.code === 'UNAUTHENTICATED'); });
      out.errors = [{ message: notSignedIn(headers), extensions: { code: 'UNAUTHENTICATED' } }].concat(others);
    }
    if (Object.keys(filled).length > 0) out.extensions = Object.assign({}, out.extensions, { playground: filled });
    return out;
  }

  function overHttp(params, headers, filled) {
    return fetch(url, {
      method: 'POST',
      headers: Object.assign({ 'content-type': 'application/json', accept: 'application/json' }, headers),
      body: JSON.stringify(params)
    }).then(function (res) {
      return res.text().then(function (text) {
        try { return JSON.parse(text); } catch (e) { return { errors: [{ message: 'HTTP ' + res.status + ' from the broker: ' + text.slice(0, 500) }] }; }
      });
    }, function (e) {
      return { errors: [{ message: 'Cannot reach the broker at ' + url + ' (' + e.message + '): is it still running?' }] };
    }).then(function (result) {
      var created = result && result.data && result.data.createPurchaseRequest && result.data.createPurchaseRequest.purchaseRequest;
      if (created && created.id) localStorage.setItem(LAST_ID, created.id);
      return shown(result, filled, headers);
    });
  }

  function failure(e, headers) {
    if (Array.isArray(e)) return shown({ errors: e }, {}, headers);
    if (e && typeof e.code === 'number' && 'reason' in e) {
      if (e.code === 4403) return { errors: [{ message: notSignedIn(headers), extensions: { code: 'UNAUTHENTICATED' } }] };
      if (e.code === 4429) return { errors: [{ message: 'Too many WebSockets open for this user: close other playground tabs or clients, then run it again.' }] };
      return { errors: [{ message: 'The WebSocket to ' + wsUrl + ' closed (' + e.code + (e.reason ? ' ' + e.reason : '') + '): is the broker still running?' }] };
    }
    if (e instanceof Error) return { errors: [{ message: e.message }] };
    return { errors: [{ message: 'Cannot open a WebSocket to ' + wsUrl + ': is the broker running?' }] };
  }

  /** Subscriptions over graphql-ws, one connection each, signed in with the Headers tab's token. */
  function overWebSocket(params, headers, filled) {
    var auth = authorization(headers);
    return {
      subscribe: function (observer) {
        var over = false;
        var client = graphqlWs.createClient({
          url: wsUrl,
          lazy: true,
          retryAttempts: 5,
          connectionParams: auth ? { authorization: auth } : {},
          shouldRetry: function (e) { return !(e && FINAL_CLOSE_CODES.indexOf(e.code) >= 0); }
        });
        var end = function (result) {
          if (over) return;
          over = true;
          if (result) observer.next(result);
          if (observer.complete) observer.complete();
          client.dispose();
        };
        var stop = client.subscribe(params, {
          next: function (result) { if (!over) observer.next(shown(result, filled, headers)); },
          error: function (e) { end(failure(e, headers)); },
          complete: function () { end(null); }
        });
        return { unsubscribe: function () { over = true; stop(); client.dispose(); } };
      }
    };
  }

  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || storedHeaders();
    var op = operation(params.query || '', params.operationName);
    var variables = Object.assign({}, params.variables);
    var filled = fill(op, variables);
    Object.assign(variables, filled);
    var run = Object.assign({}, params, { variables: variables });
    if (/\\$id\\b/.test(op.variables) && !variables.id) {
      return Promise.resolve({ errors: [{ message: 'No request to use as $id yet: run Create first (this page then fills $id with the request it made), or give {"id": "<request id>"} in the Variables tab.' }] });
    }
    return op.type === 'subscription' ? overWebSocket(run, headers, filled) : overHttp(run, headers, filled);
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: ${JSON.stringify(DEFAULT_QUERY)},
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
