// Hive Gateway in front of the hub and the partner subgraphs.
//
//   hive-gateway supergraph supergraph.graphql -c gateway.config.mjs --port 4000
//
// The hub decides every read on the caller's own token, purpose and contact, so those three
// headers — and nothing else the client sends — go to the hub subgraph. Partner subgraphs
// get none of them: they hold their own data and never see the hub's credentials.
import { defineConfig } from '@graphql-hive/gateway';

/** The subgraph name of the hub in the supergraph (compose.mjs). */
export const HUB_SUBGRAPH = 'hub';

/** Exactly the headers the hub reads: its bearer token, purpose of use and MASH contact. */
export const FORWARDED_TO_HUB = ['authorization', 'x-purpose-of-use', 'x-contact-id'];

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs({ request, subgraphName }) {
      if (subgraphName !== HUB_SUBGRAPH) return {};
      const headers = {};
      for (const name of FORWARDED_TO_HUB) {
        const value = request.headers.get(name);
        if (value !== null) headers[name] = value;
      }
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
