// Test-only OAuth 2.0 authorization server + fake resource API (a stand-in for a
// whole provider such as X), built on panva's oidc-provider.
//
//   node server.mjs <config.json>        (or OIDC_CONFIG=<config.json> node server.mjs)
//
// Prints "READY <issuer> <port>" on stdout once listening. Everything lives in memory; the
// process is meant to be started per test session and killed afterwards.
// Config keys (JSON):
//   cert, key           PEM paths for the HTTPS listener (required)
//   host, port          listen address; port 0 = pick a free one (default 127.0.0.1:0)
//   issuer              default https://<host>:<actual port>
//   clients             list of client metadata (oidc-provider / RFC 7591 names)
//   routes              oidc-provider route overrides, e.g. {"token": "/2/oauth2/token"}
//   scopes              extra supported scopes (openid + offline_access are always on)
//   access_token_ttl    seconds (default 30)
//   refresh_token_ttl   seconds (default 1 day)
//   device_code_ttl     seconds (default 600)
//   clock_tolerance     seconds of leeway on exp checks (default 0)
//   device_poll_interval seconds, added as "interval" to device authorization
//                       responses (oidc-provider omits it, and clients then
//                       default to 5 s); default 1
//   api_prefix          path prefix of the fake API (default "/2")
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import process from 'node:process';

import Provider from 'oidc-provider';

const configPath = process.argv[2] || process.env.OIDC_CONFIG;
if (!configPath) {
  console.error('usage: node server.mjs <config.json> (or set OIDC_CONFIG)');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
const host = cfg.host || '127.0.0.1';
const apiPrefix = cfg.api_prefix ?? '/2';

// ---------------------------------------------------------------- test counters
function emptyStats() {
  return {
    // grant_type -> { success, error, errors: { <error code>: n } }
    grants: {},
    // one entry per token-endpoint call: how the client authenticated, outcome
    token_requests: [],
    refresh_tokens_consumed: 0,
    revocations: 0,
    revocation_errors: 0,
    introspections: 0,
    registrations: 0,
    registration_errors: 0,
    device_authorizations: 0,
    // every Authorization header value seen on the fake API routes (null = absent)
    api_authorization_headers: [],
    api_requests: [],
  };
}
let stats = emptyStats();

function clientAuthKind(ctx) {
  const authz = ctx.headers.authorization || '';
  if (/^basic /i.test(authz)) return 'client_secret_basic';
  const body = ctx.oidc?.body || {};
  if (body.client_assertion) return 'client_assertion';
  if (body.client_secret) return 'client_secret_post';
  return 'none';
}

// ---------------------------------------------------------------- the provider
// The server must listen before the Provider is built: with port 0 the issuer
// (which embeds the port) is only known once the socket is bound.
const server = https.createServer({
  cert: readFileSync(cfg.cert),
  key: readFileSync(cfg.key),
});

let providerCallback;
server.on('request', (req, res) => {
  handle(req, res).catch((err) => {
    console.error('request failed', err);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
  });
});

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(cfg.port ?? 0, host, resolve);
});
const { port } = server.address();
const issuer = cfg.issuer || `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

const scopes = [...new Set(['openid', 'offline_access', ...(cfg.scopes || [])])];
let accessTokenTtl = cfg.access_token_ttl ?? 30; // /__test/ttl changes it until the next reset

const provider = new Provider(issuer, {
  clients: cfg.clients || [],
  routes: cfg.routes || {},
  scopes,
  responseTypes: ['code'], // plain OAuth 2.0 code flow, like the providers we mimic
  // Any username logs in; the account is just its id.
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: true }, // built-in login + consent pages (any login/password)
    deviceFlow: { enabled: true },
    registration: { enabled: true, initialAccessToken: false }, // open RFC 7591 registration
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  // Real providers (X, Google, ...) hand out refresh tokens for their own scopes
  // without OIDC's offline_access; oidc-provider's default requires offline_access.
  async issueRefreshToken(ctx, client, code) {
    return client.grantTypeAllowed('refresh_token')
      && ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code', 'refresh_token']
        .includes(ctx.oidc.params.grant_type);
  },
  // Every refresh consumes the old refresh token and issues a new one. Presenting a
  // consumed one again fails with invalid_grant AND revokes the whole grant
  // (oidc-provider's replay detection), like rotating real providers do.
  rotateRefreshToken: true,
  // oidc-provider accepts tokens for 15 s past exp by default; the fake API must
  // reject an access token as soon as its TTL is over.
  clockTolerance: cfg.clock_tolerance ?? 0,
  // Tokens must not die with the browser session that created them.
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: () => accessTokenTtl,
    ClientCredentials: () => accessTokenTtl,
    RefreshToken: cfg.refresh_token_ttl ?? 24 * 3600,
    DeviceCode: cfg.device_code_ttl ?? 600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('refresh_token.consumed', () => { stats.refresh_tokens_consumed += 1; });

// Counts protocol endpoint outcomes. Runs around oidc-provider's own router, so
// ctx.oidc (route name, parsed params) is populated once next() returns.
// Test hook: hold token requests for `tokenDelayMs` before oidc-provider sees
// them, and drop them if the client went away meanwhile (as a real server that
// never read the request would), so a client killed mid-refresh consumed nothing.
let tokenDelayMs = 0;
let tokenWaiting = 0;
let slowDownNext = 0; // answer this many token requests with slow_down (RFC 8628 3.5)
let dropNext = 0; // reset the connection of this many token requests without answering
provider.use(async (ctx, next) => {
  if (dropNext > 0 && ctx.method === 'POST' && ctx.path === (cfg.routes?.token || '/token')) {
    dropNext -= 1;
    stats.token_times = [...(stats.token_times || []), Date.now()];
    stats.token_drops = (stats.token_drops || 0) + 1;
    ctx.respond = false;
    ctx.req.socket.destroy();
    return;
  }
  if (slowDownNext > 0 && ctx.method === 'POST' && ctx.path === (cfg.routes?.token || '/token')) {
    slowDownNext -= 1;
    stats.token_times = [...(stats.token_times || []), Date.now()];
    stats.slow_downs = (stats.slow_downs || 0) + 1;
    ctx.status = 400;
    ctx.body = { error: 'slow_down', error_description: 'polling too fast' };
    return;
  }
  if (ctx.method === 'POST' && ctx.path === (cfg.routes?.token || '/token')) {
    stats.token_times = [...(stats.token_times || []), Date.now()];
    // The client's port tells whether it reused a kept-alive connection.
    stats.token_ports = [...(stats.token_ports || []), ctx.req.socket.remotePort];
  }
  if (tokenDelayMs && ctx.method === 'POST' && ctx.path === (cfg.routes?.token || '/token')) {
    tokenWaiting += 1;
    // Until the delay is over, or at once when the client goes away.
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, tokenDelayMs);
      ctx.req.socket.once('close', () => { clearTimeout(timer); resolve(); });
    });
    tokenWaiting -= 1;
    if (ctx.req.destroyed || ctx.req.socket.destroyed) {
      stats.token_requests_dropped = (stats.token_requests_dropped || 0) + 1;
      ctx.status = 499;
      return;
    }
  }
  await next();
  const route = ctx.oidc?.route;
  const error = ctx.status >= 400 ? (ctx.body?.error || `http_${ctx.status}`) : undefined;
  switch (route) {
    case 'token': {
      const gty = ctx.oidc.params?.grant_type || '(missing)';
      const entry = (stats.grants[gty] ||= { success: 0, error: 0, errors: {} });
      if (error) {
        entry.error += 1;
        entry.errors[error] = (entry.errors[error] || 0) + 1;
      } else {
        entry.success += 1;
      }
      stats.token_requests.push({
        grant_type: gty,
        client_id: ctx.oidc.client?.clientId ?? null,
        client_auth: clientAuthKind(ctx),
        status: ctx.status,
        error: error ?? null,
      });
      break;
    }
    case 'revocation':
      if (error) stats.revocation_errors += 1; else stats.revocations += 1;
      break;
    case 'introspection':
      if (!error) stats.introspections += 1;
      break;
    case 'registration':
      if (ctx.method === 'POST') {
        if (error) stats.registration_errors += 1; else stats.registrations += 1;
      }
      break;
    case 'device_authorization':
      if (!error) {
        stats.device_authorizations += 1;
        ctx.body.interval = cfg.device_poll_interval ?? 1;
      }
      break;
    default:
  }
});

providerCallback = provider.callback();

// oidc-provider validates static clients lazily (first use); fail at start-up
// instead, so a bad client config shows up in the log next to a missing READY.
for (const { client_id: id } of cfg.clients || []) {
  try {
    await provider.Client.find(id);
  } catch (err) {
    console.error(`invalid client ${id}: ${err.message}: ${err.error_description ?? ''}`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------- fake API + test routes
function json(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

// A stable numeric-looking user id per username (X ids are numeric strings).
function userId(accountId) {
  return BigInt(`0x${createHash('sha256').update(accountId).digest('hex').slice(0, 15)}`).toString();
}

async function authenticate(req) {
  const header = req.headers.authorization;
  const m = /^Bearer\s+(\S+)$/i.exec(header || '');
  // AccessToken.find returns undefined for unknown, expired, revoked tokens.
  return m ? provider.AccessToken.find(m[1]) : undefined;
}

async function api(req, res, path) {
  const header = req.headers.authorization ?? null;
  stats.api_authorization_headers.push(header);
  const record = { method: req.method, path, authorization: header, status: 0, account: null, scope: null };
  stats.api_requests.push(record);
  const body = req.method === 'POST' ? await readBody(req) : '';

  const route = `${req.method} ${path}`;
  if (route !== `GET ${apiPrefix}/users/me` && route !== `POST ${apiPrefix}/tweets`) {
    record.status = 405;
    return json(res, 405, { title: 'Method Not Allowed', status: 405 });
  }
  const token = await authenticate(req);
  if (!token) {
    record.status = 401;
    return json(res, 401, { title: 'Unauthorized', type: 'about:blank', status: 401, detail: 'Unauthorized' },
      { 'www-authenticate': 'Bearer error="invalid_token"' });
  }
  record.account = token.accountId;
  record.scope = token.scope ?? null;
  if (route === `GET ${apiPrefix}/users/me`) {
    record.status = 200;
    return json(res, 200, { data: { id: userId(token.accountId), name: token.accountId, username: token.accountId } });
  }
  let parsed;
  try {
    parsed = body ? JSON.parse(body) : {};
  } catch {
    record.status = 400;
    return json(res, 400, { title: 'Invalid Request', status: 400, detail: 'body is not JSON' });
  }
  record.status = 201;
  return json(res, 201, { data: { id: randomBytes(8).readBigUInt64BE().toString(), ...parsed } });
}

// Mint a grant with an access and a refresh token for a static client, as if the
// authorization code flow had just run: lets proxy tests start from a fresh grant
// without a browser. With revoke_access, the access token is destroyed at once, so
// the API answers 401 to it while authsome still believes it valid.
async function issue(req, res) {
  const body = JSON.parse((await readBody(req)) || '{}');
  const client = await provider.Client.find(body.client_id || '');
  if (!client) return json(res, 400, { error: 'unknown client_id' });
  const accountId = body.account || 'alice';
  const scope = body.scope || 'tweet.read users.read offline.access';
  const grant = new provider.Grant({ clientId: client.clientId, accountId });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();
  const base = { accountId, client, grantId, scope, gty: 'authorization_code' };
  const at = new provider.AccessToken(base);
  const accessToken = await at.save();
  const refreshToken = await new provider.RefreshToken({ ...base, rotations: 0 }).save();
  if (body.revoke_access) await at.destroy();
  return json(res, 200, {
    access_token: accessToken, refresh_token: refreshToken, token_type: 'Bearer', expires_in: accessTokenTtl, scope,
  });
}

async function handle(req, res) {
  const path = new URL(req.url, issuer).pathname;
  if (path === '/__test/stats' && req.method === 'GET') return json(res, 200, stats);
  if (path === '/__test/reset' && req.method === 'POST') {
    stats = emptyStats();
    tokenDelayMs = 0;
    slowDownNext = 0;
    dropNext = 0;
    accessTokenTtl = cfg.access_token_ttl ?? 30;
    return json(res, 200, { ok: true });
  }
  if (path === '/__test/ttl' && req.method === 'POST') {
    accessTokenTtl = JSON.parse((await readBody(req)) || '{}').access_token_ttl || accessTokenTtl;
    return json(res, 200, { access_token_ttl: accessTokenTtl });
  }
  if (path === '/__test/issue' && req.method === 'POST') return issue(req, res);
  if (path === '/__test/delay' && req.method === 'POST') {
    tokenDelayMs = JSON.parse((await readBody(req)) || '{}').token_ms || 0;
    return json(res, 200, { token_ms: tokenDelayMs });
  }
  if (path === '/__test/waiting' && req.method === 'GET') return json(res, 200, { token: tokenWaiting });
  if (path === '/__test/slow_down' && req.method === 'POST') {
    slowDownNext = JSON.parse((await readBody(req)) || '{}').count || 0;
    return json(res, 200, { count: slowDownNext });
  }
  if (path === '/__test/drop' && req.method === 'POST') {
    dropNext = JSON.parse((await readBody(req)) || '{}').count || 0;
    return json(res, 200, { count: dropNext });
  }
  // Protocol routes win (a routes override may live under the API prefix, e.g. X's
  // token endpoint /2/oauth2/token), so only exact API paths are diverted.
  if (path === `${apiPrefix}/users/me` || path === `${apiPrefix}/tweets`) return api(req, res, path);
  return providerCallback(req, res);
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

console.log(`READY ${issuer} ${port}`);
