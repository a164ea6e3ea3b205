#!/bin/bash
# Same-run comparison (issue 14): bench/scale.py's steady state at 10,000 series on an old commit
# and on this checkout, alternating old/new twice, fresh processes each, the same venv.
#     bash bench/compare_layout.sh [OLD_COMMIT]      (default 471404c, the last commit before the layout)
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
OLD_COMMIT=${1:-471404c}
OLD_DIR=$(mktemp -d)
git -C "$HERE" worktree add --detach "$OLD_DIR" "$OLD_COMMIT" >/dev/null
trap 'git -C "$HERE" worktree remove --force "$OLD_DIR"' EXIT
NEW=$(git -C "$HERE" rev-parse --short HEAD)
echo "new=$NEW old=$OLD_COMMIT start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  for which in old new; do
    if [ $which = old ]; then dir=$OLD_DIR; else dir=$HERE; fi
    echo "=== round $round $which ($dir) $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd $dir && PYTHONPATH=$dir "$HERE/.venv/bin/python" bench/scale.py --series 10000 --real 0 --series-models 0 --runs 2 --ticks 40) 2>&1 | grep -v "^\s*$" | tail -40
  done
done
echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
