// The school nurse service: an example partner subgraph (Apollo Federation v2, served by
// graphql-yoga). It holds only its own data (which child each nurse follows, in memory) and
// refers to the hub's records by hub id: the gateway asks the hub for everything else, with
// the caller's own token and purpose, so the hub's policy and audit apply to every read.
//
//   node nurse/server.mjs [--port 4001] [--host 127.0.0.1]
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'graphql';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { createYoga } from 'graphql-yoga';

export const typeDefs = parse(
  readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'),
);

// child id -> involvement; a real service keeps this in its own store.
const caseload = new Map();

const resolvers = {
  Query: {
    nurseCaseload: (_, { nurse }) =>
      [...caseload.entries()]
        .filter(([, involvement]) => involvement.nurse === nurse)
        .map(([id]) => ({ __typename: 'ChildRecord', id })),
  },
  Mutation: {
    followChild: (_, { nurse, childId, school }) => {
      // Stored as given: the hub, not this example, is what must stand a bad reference.
      const involvement = { nurse, school, since: new Date().toISOString().slice(0, 10) };
      caseload.set(childId, involvement);
      return involvement;
    },
  },
  ChildRecord: {
    __resolveReference: ({ id }) => ({ id }),
    schoolNurse: ({ id }) => caseload.get(id) ?? null,
  },
  Person: {
    __resolveReference: ({ id }) => ({ id }),
    knownToSchoolNurse: ({ id }) => caseload.has(id),
  },
};

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4001' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const yoga = createYoga({
  schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
  graphiql: false,
  // The gateway is this service's only client; nothing it is sent is logged.
  logging: 'warn',
});

const server = createServer(yoga);
server.listen(Number(values.port), values.host, () => {
  console.log(`school nurse subgraph on http://${values.host}:${values.port}/graphql`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
