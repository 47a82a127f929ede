#!/usr/bin/env bash
# make demo: serve Parley with SQLite under ./data/demo and play simulated customers
# on every channel kind until Ctrl-C. Log in at http://127.0.0.1:8080 with the
# credentials printed below.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/parley}
ADDR=${PARLEY_ADDR:-127.0.0.1:8080}
export PARLEY_DATA_DIR=${PARLEY_DATA_DIR:-./data/demo}
EMAIL=${DEMO_EMAIL:-demo@example.com}
PASSWORD=${DEMO_PASSWORD:-demo-password}
WORKSPACE=${DEMO_WORKSPACE:-Demo}

mkdir -p "$PARLEY_DATA_DIR"
"$BIN" setup --workspace "$WORKSPACE" --email "$EMAIL" --password "$PASSWORD" --name "Demo Operator" >/dev/null 2>&1 || true
PARLEY_ADDR=$ADDR "$BIN" serve &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 50); do curl -fsS "http://$ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
echo
echo "Parley demo: open http://$ADDR and log in as $EMAIL / $PASSWORD"
echo "Simulated customers are writing on WhatsApp, Messenger, Instagram, Telegram, SMS, Wappi and the API channel."
echo
"$BIN" sim --target "http://$ADDR" --workspace "$WORKSPACE" --email "$EMAIL" --password "$PASSWORD" \
  --rate "${DEMO_RATE:-0.5}" --duration "${DEMO_DURATION:-30m}" --reply-every 0 || true
wait $server
