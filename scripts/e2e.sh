#!/usr/bin/env bash
# Browser end-to-end tests: a real `parley serve` (fresh SQLite data dir) and the
# provider simulator (`parley sim serve`), driven by Playwright (playwright-core)
# in Debian's Chromium. Screenshots land in web/e2e/screenshots/.
# Without Chromium it skips with a message, except under CI where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/parley}
CHROMIUM=${PARLEY_E2E_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  if [ -n "${CI:-}" ]; then
    echo "e2e: $CHROMIUM not found (apt-get install -y chromium)" >&2
    exit 1
  fi
  echo "e2e: skipped: $CHROMIUM not found (apt-get install -y chromium to run the browser tests)"
  exit 0
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${E2E_FAILED:-}" = 1 ]; then
    echo "--- server log (tail)"; tail -n 40 "$tmp/serve.err" || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# wait_url FILE: prints the http URL a process announced in FILE.
wait_url() {
  for _ in $(seq 1 150); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$1" | head -n1 || true)
    if [ -n "$url" ]; then echo "$url"; return 0; fi
    sleep 0.1
  done
  echo "e2e: no URL in $1" >&2; cat "$1" >&2; return 1
}

"$BIN" sim serve --listen 127.0.0.1:0 --status-delay 100ms >"$tmp/sim.out" 2>"$tmp/sim.err" &
pids+=($!)
PARLEY_DATA_DIR="$tmp/data" PARLEY_ADDR=127.0.0.1:0 PARLEY_LOG_LEVEL=warn "$BIN" serve >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
export PARLEY_E2E_SIM_URL; PARLEY_E2E_SIM_URL=$(wait_url "$tmp/sim.out")
export PARLEY_E2E_URL; PARLEY_E2E_URL=$(wait_url "$tmp/serve.out")
export PARLEY_E2E_CHROMIUM="$CHROMIUM"
echo "e2e: parley at $PARLEY_E2E_URL, simulator at $PARLEY_E2E_SIM_URL"
if ! npm --prefix web run e2e; then
  E2E_FAILED=1
  exit 1
fi
