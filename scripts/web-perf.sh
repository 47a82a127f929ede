#!/usr/bin/env bash
# Web performance figures (web/perf/measure.ts): starts a real `parley serve` on a fresh SQLite
# data dir, seeds it (a queue and a 5,000-message thread via signed `api` webhooks) and measures
# in Debian's Chromium: JS bundle gzip, cold-load time to interactive + FCP/LCP, scroll frame times.
# Needs bin/parley (make build) and web/dist (npm --prefix web run build). Tunables: PERF_* in measure.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/parley}
CHROMIUM=${PARLEY_E2E_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "web-perf: $CHROMIUM not found (apt-get install -y chromium)" >&2
  exit 1
fi
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "${PERF_FAILED:-}" = 1 ]; then echo "--- server log (tail)"; tail -n 40 "$tmp/serve.err" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

PARLEY_DATA_DIR="$tmp/data" PARLEY_ADDR=127.0.0.1:0 PARLEY_LOG_LEVEL=warn "$BIN" serve >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
url=
for _ in $(seq 1 150); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$tmp/serve.out" | head -n1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then echo "web-perf: the server announced no URL" >&2; cat "$tmp/serve.out" "$tmp/serve.err" >&2; exit 1; fi
export PARLEY_E2E_URL="$url" PARLEY_E2E_CHROMIUM="$CHROMIUM"
echo "web-perf: parley at $PARLEY_E2E_URL"
if ! npm --prefix web run perf; then
  PERF_FAILED=1
  exit 1
fi
