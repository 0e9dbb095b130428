// A real OpenID provider for the tests (panva's certified `oidc-provider`), on loopback.
// Configured by one JSON argument:
//   {"port": 0, "clients": [...oidc-provider client metadata...],
//    "accounts": {"<login>": {"password": "...", "claims": {"roles": [...], "agency": ..., "team": ...}}},
//    "resource": "<the hub's audience, a URI>",          (optional: JWT access tokens for it)
//    "clientClaims": {"<client id>": {...}}}               (optional: extra claims a client's
//                                                           client-credentials token carries)
// With "resource", access tokens for it are JWTs (RFC 9068, through oidc-provider's resource
// indicators): a person's carries their claims, a client-credentials one sub = client_id.
// Prints `listening <issuer>` once it answers. Its sign-in page is its own (no web fonts, no
// script): the tests check that signing in makes no request off loopback.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(process.argv[2]);
const accounts = config.accounts;
const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });

function page(body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head><body>${body}</body></html>`;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The hub as a resource server: JWT access tokens for it, by client credentials too.
function resourceServer(resource) {
  const info = { scope: "mash", audience: resource, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
  return {
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== resource) throw new Error("unknown resource");
          return info;
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      if (token.accountId) return accounts[token.accountId]?.claims ?? {};
      return config.clientClaims?.[token.clientId] ?? {};
    },
  };
}

const server = http.createServer();
server.listen(config.port || 0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys: [{ ...key, kid: randomUUID(), alg: "RS256", use: "sig" }] },
    scopes: ["openid", "mash"],
    claims: { openid: ["sub"], mash: ["roles", "agency", "team"] },
    conformIdTokenClaims: false, // the hub reads roles, agency and team from the ID token
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ["test-provider-cookie-key"] },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    ...(config.resource ? resourceServer(config.resource) : {}),
    async findAccount(ctx, id) {
      if (!accounts[id]) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...accounts[id].claims }) };
    },
    // A first-party client: no consent screen; the grant covers what it asked for.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope || "openid");
      if (config.resource) grant.addResourceScope(config.resource, "mash");
      await grant.save();
      return grant;
    },
  });
  const callback = provider.callback();

  server.on("request", async (req, res) => {
    const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === "GET") {
        res.setHeader("Content-Type", "text/html; charset=utf-8");
        res.setHeader("Content-Security-Policy", "default-src 'none'; form-action 'self' http://127.0.0.1:*");
        res.end(page(`<h1>Test identity provider</h1><form method="post" action="/interaction/${escape(details.uid)}/login">
          <label>User <input id="login" name="login" autocomplete="off"></label>
          <label>Password <input id="password" name="password" type="password"></label>
          <button id="submit" type="submit">Sign in</button></form>`));
        return;
      }
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const account = accounts[form.get("login")];
      if (!account || account.password !== form.get("password")) {
        res.statusCode = 401;
        res.setHeader("Content-Type", "text/html; charset=utf-8");
        res.end(page("<p id=\"error\">Wrong user or password.</p>"));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: form.get("login") } }, { mergeWithLastSubmission: false });
    } catch (error) {
      res.statusCode = 400;
      res.end(String(error.message));
    }
  });
  console.log(`listening ${issuer}`);
});
