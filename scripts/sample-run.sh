#!/usr/bin/env bash
# Run herbx over the 20 bundled sample sheets, offline and without an API key: a fake
# OpenRouter on 127.0.0.1 answers with real recorded gpt-4o-mini responses where it
# has them and with answers marked as fake elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/herbx ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -e '.[offline]'
fi

work=runs/sample
mkdir -p "$work"
.venv/bin/python -m herbx.fakeserver --port 0 \
    --recorded samples/recorded/gpt-4o-mini-2024-07-18.jsonl \
    --specimens samples/specimens >"$work/fake-server.out" &
fake=$!
trap 'kill "$fake" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q listening "$work/fake-server.out" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/fake-server.out")

export OPENROUTER_BASE_URL="$url"
export OPENROUTER_API_KEY="sk-or-v1-sample-run-not-a-real-key-0000000000000000000000000"
export HERBX_LEDGER="$work/herbx.db"
run_id="sample-$(date -u +%Y%m%d-%H%M%S)"

.venv/bin/herbx run samples/specimens --run-id "$run_id" --out "$work/$run_id"

synthetic=$(grep -c 'synthetic answer' "$work/$run_id/raw.jsonl" || true)
echo
echo "results:     $work/$run_id/raw.jsonl ($(wc -l <"$work/$run_id/raw.jsonl") lines;" \
    "$synthetic are the fake server's synthetic answers, the rest recorded gpt-4o-mini)"
echo "environment: $work/$run_id/environment.json"
echo "ledger:      $HERBX_LEDGER"
echo "audit trail: .venv/bin/herbx audit --ledger $HERBX_LEDGER --run $run_id"
echo "runs:        .venv/bin/herbx runs --ledger $HERBX_LEDGER"
echo
.venv/bin/herbx audit --run "$run_id" | tail -n 4
