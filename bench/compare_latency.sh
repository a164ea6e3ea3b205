#!/bin/bash
# Same-run comparison (issue 20): bench/latency.py at 10,000 series in one poll on an old commit
# (this checkout's bench script, the old commit's alertd) and on this checkout, alternating,
# fresh processes each, the same venv; the new code at three places of the jumping series.
#     bash bench/compare_latency.sh [OLD_COMMIT] [ROUNDS]     (default: main, 3 rounds)
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
OLD_COMMIT=${1:-main}
ROUNDS=${2:-3}
OLD_DIR=$(mktemp -d)
git -C "$HERE" worktree add --detach "$OLD_DIR" "$OLD_COMMIT" >/dev/null
trap 'git -C "$HERE" worktree remove --force "$OLD_DIR"' EXIT
NEW=$(git -C "$HERE" rev-parse --short HEAD)
echo "new=$NEW old=$OLD_COMMIT start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for which in old new; do
    if [ $which = old ]; then dir=$OLD_DIR; positions=spread; else dir=$HERE; positions="spread start end"; fi
    echo "=== round $round $which $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$HERE/bench" && PYTHONPATH=$dir:$HERE/tests "$HERE/.venv/bin/python" latency.py --series 10000 \
      --reps 40 --runs 1 --position $positions) 2>&1 | grep -E "^ +10000 "
  done
done
echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
