#!/usr/bin/env bash
# The whole scripted-evaluation flow on the generated arrow-of-time dataset:
#   1. make the fixture videos (scripts/make-samples.mjs; reused when already there),
#   2. train an `lstm` head and a `mean` head (same seed) on arrow/train.csv,
#   3. evaluate both on the held-out scenes of arrow/test.csv (report folders),
#   4. evaluate the lstm again: every embedding now comes from the cache,
#   5. compare the two heads: metrics side by side, paired bootstrap CI of the difference.
#
# Usage: scripts/eval-samples.sh [WORK_DIR]     (default: $TMPDIR/framewise-eval-samples)
# Env:   FRAMEWISE_FIXTURES (fixture folder), EPOCHS (default 30), SEED (default 1), EVAL_CACHE (embedding
#        cache, default WORK_DIR/cache: the first eval is cold),
#        FRAMEWISE_BACKEND (auto|tensorflow|wasm|cpu, default auto)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${1:-${TMPDIR:-/tmp}/framewise-eval-samples}"
FIX="${FRAMEWISE_FIXTURES:-$(node -e 'console.log(require("node:path").join(require("node:os").tmpdir(), "framewise-fixtures-v1"))')}"
EPOCHS="${EPOCHS:-30}"
SEED="${SEED:-1}"
BACKEND="${FRAMEWISE_BACKEND:-auto}"
CACHE="${EVAL_CACHE:-$WORK/cache}"

fw() { node dist/cli/main.js "$@"; }
step() { printf '\n== %s\n' "$*"; }
seconds() { node -e 'console.log((JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).timing.wallMs / 1000).toFixed(2) + " s")' "$1"; }

[ -f dist/cli/main.js ] || npm run build
step "fixtures in $FIX"
node scripts/make-samples.mjs --fixtures-only --fixtures-dir "$FIX"
rm -rf "$WORK/models" "$WORK/reports"
# Start cold, but never delete a cache the caller pointed us at.
[ -n "${EVAL_CACHE:-}" ] || rm -rf "$CACHE"
mkdir -p "$WORK"

for head in lstm mean; do
  step "train $head (seed $SEED, $EPOCHS epochs)"
  fw train "$FIX/arrow/train.csv" --out "$WORK/models/$head" --head "$head" --seed "$SEED" --epochs "$EPOCHS" \
    --backend "$BACKEND" --cache "$CACHE" --quiet
done

for head in lstm mean; do
  step "eval $head on held-out scenes"
  fw eval "$FIX/arrow/test.csv" --model "$WORK/models/$head" --out "$WORK/reports/$head" --backend "$BACKEND" --cache "$CACHE" --quiet
done

step "eval lstm again (cached embeddings)"
fw eval "$FIX/arrow/test.csv" --model "$WORK/models/lstm" --out "$WORK/reports/lstm-again" --backend "$BACKEND" --cache "$CACHE" --quiet >/dev/null
echo "wall time: first eval $(seconds "$WORK/reports/lstm/metrics.json"), cached eval $(seconds "$WORK/reports/lstm-again/metrics.json")"
# Everything but the timing section is identical between the two runs.
node -e '
  const fs = require("node:fs");
  const [a, b] = process.argv.slice(1).map((f) => { const r = JSON.parse(fs.readFileSync(f, "utf8")); delete r.timing; return JSON.stringify(r); });
  console.log(a === b ? "metrics.json identical apart from timing: yes" : "metrics.json identical apart from timing: NO");
  process.exit(a === b ? 0 : 1);
' "$WORK/reports/lstm/metrics.json" "$WORK/reports/lstm-again/metrics.json"

step "compare mean (baseline) with lstm"
fw compare "$WORK/reports/mean" "$WORK/reports/lstm"
echo
echo "reports: $WORK/reports/{lstm,mean}/report.md and confusion.png"
