// Compose the hub's checked-in SDL with the example partner subgraph's into a supergraph.
// Any composition error OR hint fails (exit 1), each printed: a hint today is a gateway
// surprise tomorrow, so the suite treats it as a break.
//
//   node compose.mjs [--hub-sdl ../schema/hub.graphql | --hub-service] [--hub-url URL]
//                    [--nurse-url URL] [--nurse-sdl nurse/schema.graphql] [--out FILE]
//
// The hub's SDL comes from the checked-in schema/hub.graphql, or with --hub-service from the
// running hub's `_service { sdl }` at --hub-url: the hub answers only authenticated
// requests, so that query carries `Authorization: Bearer $MASH_HUB_TOKEN` (any hub token).
// Without --out the supergraph is printed on standard output.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

const here = (path) => new URL(path, import.meta.url);

const { values } = parseArgs({
  options: {
    'hub-sdl': { type: 'string', default: here('../schema/hub.graphql').pathname },
    'hub-service': { type: 'boolean', default: false },
    'hub-url': { type: 'string', default: 'http://127.0.0.1:8000/graphql' },
    'nurse-url': { type: 'string', default: 'http://127.0.0.1:4001/graphql' },
    'nurse-sdl': { type: 'string', default: here('./nurse/schema.graphql').pathname },
    out: { type: 'string' },
  },
});

/** The running hub's own SDL, asked for with a token (the hub refuses anonymous queries). */
async function serviceSdl(url) {
  const token = process.env.MASH_HUB_TOKEN;
  if (!token) fail('--hub-service needs a hub token in MASH_HUB_TOKEN');
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ _service { sdl } }' }),
  }).catch((error) => fail(`cannot reach the hub at ${url}: ${error.cause?.code ?? error.message}`));
  const body = await response.json().catch(() => ({}));
  const sdl = body.data?._service?.sdl;
  if (!sdl) {
    const why = body.errors?.map((e) => e.extensions?.code ?? e.message).join(', ');
    fail(`the hub at ${url} gave no SDL (HTTP ${response.status}${why ? `: ${why}` : ''})`);
  }
  return sdl;
}

function fail(message) {
  console.error(message);
  process.exit(1);
}

const hubSdl = values['hub-service']
  ? await serviceSdl(values['hub-url'])
  : readFileSync(values['hub-sdl'], 'utf8');

const subgraphs = [
  { name: 'hub', url: values['hub-url'], sdl: hubSdl },
  {
    name: 'nurse',
    url: values['nurse-url'],
    sdl: readFileSync(values['nurse-sdl'], 'utf8'),
  },
];

const result = composeServices(
  subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
);
const problems = [
  ...(result.errors ?? []).map((e) => `error: ${e.extensions?.code ?? ''} ${e.message}`),
  ...(result.hints ?? []).map((h) => `hint: ${h.definition?.code ?? ''} ${h.message}`),
];
if (problems.length > 0 || !result.supergraphSdl) {
  for (const problem of problems) console.error(problem);
  fail(`composition failed: ${problems.length} error(s) and hint(s)`);
}
if (values.out) {
  writeFileSync(values.out, result.supergraphSdl);
  console.error(`supergraph of ${subgraphs.map((s) => s.name).join(' + ')} -> ${values.out}`);
} else {
  process.stdout.write(result.supergraphSdl);
}
