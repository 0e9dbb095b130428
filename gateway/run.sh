#!/usr/bin/env bash
# `make gateway`: the demo hub, the example partner subgraph and Hive Gateway in front of
# both, on loopback. Ctrl-C stops all three.
#   HUB_PORT (8000), NURSE_PORT (4001), GATEWAY_PORT (4000)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
hub_port="${HUB_PORT:-8000}" nurse_port="${NURSE_PORT:-4001}" gateway_port="${GATEWAY_PORT:-4000}"
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$root/.venv/bin/mash-hub" demo --port "$hub_port" &
pids+=($!)
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$hub_port/healthz" >/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "the demo hub stopped" >&2; exit 1; }
  sleep 1
done
curl -sf "http://127.0.0.1:$hub_port/healthz" >/dev/null || { echo "the demo hub did not start" >&2; exit 1; }

# Composed from the running hub's own `_service` SDL, asked for with a demo token.
supergraph="$here/supergraph.graphql"
MASH_HUB_TOKEN="$("$root/.venv/bin/mash-hub" token --role partner_system)" \
  node "$here/compose.mjs" --hub-service \
  --hub-url "http://127.0.0.1:$hub_port/graphql" \
  --nurse-url "http://127.0.0.1:$nurse_port/graphql" --out "$supergraph"

node "$here/nurse/server.mjs" --port "$nurse_port" &
pids+=($!)
(cd "$here" && exec node_modules/.bin/hive-gateway supergraph "$supergraph" \
  -c gateway.config.mjs --host 127.0.0.1 --port "$gateway_port") &
pids+=($!)
echo "
Hive Gateway   http://127.0.0.1:$gateway_port/graphql  (hub + school nurse subgraph)
  token:       .venv/bin/mash-hub token --role mash_social_worker
  stop:        Ctrl-C
"
wait -n
