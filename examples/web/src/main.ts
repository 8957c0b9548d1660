import { BrokerClient, type Result, codeOf } from './client';
import type { RequestFieldsFragment } from './gql/graphql';
import { CreateRequestDocument, RecentRequestsDocument, WatchRequestDocument } from './operations';

const TOKEN_KEY = 'book-broker-example.token';
const SAMPLE_ADDRESS = { name: 'Ada Lovelace', line1: '1 Main St', city: 'Springfield', postalCode: '12345', country: 'US' };

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const signInForm = byId<HTMLFormElement>('sign-in');
const signOutButton = byId<HTMLButtonElement>('sign-out');
const signedIn = byId<HTMLParagraphElement>('signed-in');
const errorBox = byId<HTMLParagraphElement>('error');
const createSection = byId<HTMLElement>('create-section');
const createForm = byId<HTMLFormElement>('create');
const requestsSection = byId<HTMLElement>('requests-section');
const list = byId<HTMLUListElement>('requests');

/** The signed-in session: its client and one live subscription per request shown. */
let session: { client: BrokerClient; watches: Map<string, () => void> } | null = null;

function showError(message: string): void {
  errorBox.textContent = message;
}

function describe(result: Result<unknown>): string {
  const error = result.errors?.[0];
  if (!error) return 'no answer';
  return `${error.message}${error.extensions?.code ? ` (${error.extensions.code})` : ''}`;
}

async function signIn(token: string): Promise<void> {
  signOut();
  const client = new BrokerClient(token);
  const recent = await client.execute(RecentRequestsDocument, { first: 20 });
  if (!recent.data) {
    client.dispose();
    localStorage.removeItem(TOKEN_KEY);
    showError(codeOf(recent) === 'UNAUTHENTICATED' ? 'That token was refused: paste a token printed by npm start (UNAUTHENTICATED).' : `Could not sign in: ${describe(recent)}`);
    return;
  }
  localStorage.setItem(TOKEN_KEY, token);
  session = { client, watches: new Map() };
  showError('');
  signedIn.textContent = 'Signed in.';
  signOutButton.hidden = false;
  createSection.hidden = false;
  requestsSection.hidden = false;
  // Newest first from the broker; prepend oldest first so the newest ends on top.
  for (const { node } of [...recent.data.purchaseRequests.edges].reverse()) show(node);
}

function signOut(): void {
  if (session) {
    for (const stop of session.watches.values()) stop();
    session.client.dispose();
    session = null;
  }
  list.replaceChildren();
  signedIn.textContent = '';
  signOutButton.hidden = true;
  createSection.hidden = true;
  requestsSection.hidden = true;
}

async function create(form: FormData): Promise<void> {
  if (!session) return;
  const cents = Math.round(Number(form.get('max')) * 100);
  const result = await session.client.execute(CreateRequestDocument, {
    input: {
      // A fresh key per submission: the same key would return the first request again.
      idempotencyKey: crypto.randomUUID(),
      book: { isbn: String(form.get('isbn')).trim() },
      maxTotalPrice: { cents, currency: 'USD' },
      expiresAt: new Date(String(form.get('deadline'))).toISOString(),
      shippingAddress: SAMPLE_ADDRESS,
      paymentToken: 'tok_visa',
    },
  });
  const payload = result.data?.createPurchaseRequest;
  if (!payload) return showError(`Could not create the request: ${describe(result)}`);
  if (payload.userErrors.length > 0) return showError(payload.userErrors.map((e) => `${e.message} (${e.code})`).join('; '));
  showError('');
  if (payload.purchaseRequest) show(payload.purchaseRequest);
}

/** Shows a request and keeps it live: the subscription sends its state now and after every change. */
function show(request: RequestFieldsFragment): void {
  render(request);
  const current = session;
  if (!current || current.watches.has(request.id)) return;
  const stop = current.client.subscribe(WatchRequestDocument, { id: request.id }, {
    next: (result) => {
      if (result.data) render(result.data.purchaseRequestUpdated);
      else showError(`Lost the live status of ${request.id}: ${describe(result)}`);
    },
    // Completes after a terminal status; an error leaves the last state shown.
    done: (error) => {
      current.watches.delete(request.id);
      if (error && session === current) showError(`Lost the live status of ${request.id}: ${error instanceof Error ? error.message : 'connection closed'}`);
    },
  });
  current.watches.set(request.id, stop);
}

function render(request: RequestFieldsFragment): void {
  const item = el('li', { 'data-testid': 'request', 'data-request-id': request.id, 'aria-label': `Request for ${request.book.isbn ?? request.book.title ?? request.id}` },
    el('div', {},
      el('strong', {}, request.book.title ?? `ISBN ${request.book.isbn ?? '—'}`),
      ` · up to ${money(request.maxTotalPrice)} · `,
      el('span', { class: 'status', 'data-testid': 'status', 'data-status': request.status }, request.status),
    ),
    el('div', { 'data-testid': 'summary' }, summary(request)),
    el('ol', { class: 'events', 'aria-label': 'Events' },
      ...request.events.map((e) => el('li', {}, `${new Date(e.at).toLocaleTimeString()} ${e.type}${e.message ? ` — ${e.message}` : ''}`)),
    ),
  );
  const existing = list.querySelector(`li[data-request-id="${CSS.escape(request.id)}"]`);
  // A state older than the one shown (e.g. the create answer arriving after the first update) is ignored.
  if (existing && Number(existing.getAttribute('data-revision')) > request.revision) return;
  item.setAttribute('data-revision', String(request.revision));
  if (existing) existing.replaceWith(item);
  else list.prepend(item);
}

function summary(request: RequestFieldsFragment): string {
  if (request.order) return `Ordered from ${request.order.seller.name} for ${money(request.order.total)} (order ${request.order.sellerOrderId}).`;
  if (request.failureReason) return request.failureReason;
  if (request.bestOffer) return `Best offer so far: ${money(request.bestOffer.total)} from ${request.bestOffer.seller.name}; the broker keeps watching.`;
  switch (request.status) {
    case 'PENDING':
    case 'SEARCHING':
      return 'Looking for offers…';
    case 'OUT_OF_STOCK':
      return 'No seller has it in stock; the broker keeps checking until the deadline.';
    default:
      return request.events.at(-1)?.message ?? '';
  }
}

function money(m: { cents: number; currency: string }): string {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: m.currency }).format(m.cents / 100);
}

/** A small element builder: text children only, so nothing from the server is parsed as HTML. */
function el(tag: string, attributes: Record<string, string>, ...children: Array<Node | string>): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function inAnHour(): string {
  const d = new Date(Date.now() + 3_600_000);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); // datetime-local takes local time
  return d.toISOString().slice(0, 16);
}

signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = String(new FormData(signInForm).get('token')).trim().replace(/^Bearer\s+/i, '');
  void signIn(token);
});
signOutButton.addEventListener('click', () => {
  localStorage.removeItem(TOKEN_KEY);
  signOut();
});
createForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void create(new FormData(createForm)).then(() => {
    (createForm.elements.namedItem('deadline') as HTMLInputElement).value = inAnHour();
  });
});

(createForm.elements.namedItem('deadline') as HTMLInputElement).value = inAnHour();
const saved = localStorage.getItem(TOKEN_KEY);
if (saved) {
  (signInForm.elements.namedItem('token') as HTMLInputElement).value = saved;
  void signIn(saved);
}
