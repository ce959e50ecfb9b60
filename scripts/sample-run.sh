#!/usr/bin/env bash
# Run herbx over the 20 bundled sample sheets on this machine alone: no API key, no
# network. The local engine reads each sheet with the OCR models that ship inside
# the rapidocr wheel and turns the label text into draft Darwin Core records.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! .venv/bin/python -c "import herbx, rapidocr" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -e '.[offline]'
fi

work=runs/sample
mkdir -p "$work"
export HERBX_LEDGER="$work/herbx.db"
# A fixed id: run the script again after a kill and it resumes that run.
run_id=sample

.venv/bin/herbx run samples/specimens --engine local --run-id "$run_id" \
    --out "$work/$run_id"

.venv/bin/herbx project audit.log --run "$run_id" -o "$work/$run_id/audit.log"
echo
echo "results:     $work/$run_id/raw.jsonl (draft records, one line per sheet)"
echo "environment: $work/$run_id/environment.json"
echo "audit trail: $work/$run_id/audit.log"
echo "             (or .venv/bin/herbx audit --ledger $HERBX_LEDGER --run $run_id)"
echo "ledger:      $HERBX_LEDGER"
echo "reports:     .venv/bin/herbx report --list --ledger $HERBX_LEDGER"
echo
echo ".venv/bin/herbx report success_rate --ledger $HERBX_LEDGER --run $run_id"
.venv/bin/herbx report success_rate --run "$run_id"
