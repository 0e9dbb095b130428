// Hive Gateway in front of the hub and the partner subgraphs.
//
//   hive-gateway supergraph supergraph.graphql -c gateway.config.mjs --port 4000
//
// The hub decides every read on the caller's own token, purpose and contact, so those three
// headers — and nothing else the client sends — go to the hub subgraph. Partner subgraphs
// get none of them: they hold their own data and never see the hub's credentials.
//
// Partners run only their trusted documents (trusted.mjs), checked here at the edge. The
// gateway then proves itself to the hub with its own client-credentials token,
// MASH_ROUTER_TOKEN, in `X-Router-Authorization` (hub/partners/routers.py): the hub, which trusts
// that router, skips its own document check for the subgraph operations planned from a
// registered document, and still applies its limits, policy and audit.
//
//   MASH_TRUSTED_DOCUMENTS_DIR  the manifests (default ./trusted-documents)
//   MASH_PARTNER_SYSTEMS        the hub's JSON {client id: name}: these clients are gated
//                               even without a manifest (they then run nothing)
//   MASH_ROUTER_TOKEN           this gateway's own token for the hub
import { defineConfig } from '@graphql-hive/gateway';
import { trustedDocuments } from './trusted.mjs';

/** The subgraph name of the hub in the supergraph (compose.mjs). */
export const HUB_SUBGRAPH = 'hub';

/** Exactly the headers the hub reads: its bearer token, purpose of use and MASH contact. */
export const FORWARDED_TO_HUB = ['authorization', 'x-purpose-of-use', 'x-contact-id'];

/** The gateway's own header to the hub; never taken from a client (not in the list above). */
export const ROUTER_HEADER = 'x-router-authorization';

const trusted = trustedDocuments(
  process.env.MASH_TRUSTED_DOCUMENTS_DIR ?? new URL('./trusted-documents/', import.meta.url).pathname,
  Object.keys(JSON.parse(process.env.MASH_PARTNER_SYSTEMS || '{}')),
);
const routerToken = process.env.MASH_ROUTER_TOKEN;

export const gatewayConfig = defineConfig({
  persistedDocuments: trusted.persistedDocuments,
  plugins: () => [trusted.plugin],
  propagateHeaders: {
    fromClientToSubgraphs({ request, subgraphName }) {
      if (subgraphName !== HUB_SUBGRAPH) return {};
      const headers = {};
      for (const name of FORWARDED_TO_HUB) {
        const value = request.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      if (routerToken) headers[ROUTER_HEADER] = `Bearer ${routerToken}`;
      return headers;
    },
  },
  // Every read the hub answers is one audit event: two identical reads in flight at once
  // (the same user, query and variables) must reach it twice, not share one answer, which
  // the HTTP transport would otherwise do for queries.
  transportEntries: {
    [HUB_SUBGRAPH]: { options: { deduplicateInflightRequests: false } },
  },
  // Unexpected errors reach clients masked; the hub's and partners' GraphQL errors (with
  // their codes) pass through as the subgraphs wrote them.
  maskedErrors: true,
  // No explorer on the gateway: the hub serves its own, and a query never goes in a URL.
  graphiql: false,
  landingPage: false,
  // Warnings and errors only: request logs could carry query text (names typed inline).
  logging: 'warn',
});
