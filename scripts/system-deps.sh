#!/bin/sh
# Debian packages some tests use (real servers and tools). Installs what is missing when run
# as root with apt-get available; otherwise says what to install and carries on.
set -u
# chromium: the browser tests (tests/test_browser.py) drive Debian's Chromium with Playwright,
# whose own browser download cannot be fetched here; faketime: libfaketime steps the wall
# clock under the real daemon (tests/test_clock_step_system.py, bench/clock_step.py); jq reads
# the daemon's journal (tests/test_journal_json.py)
PACKAGES="prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager prometheus-alertmanager:amtool systemd:systemd-analyze chromium:chromium faketime:faketime jq:jq"
missing=""
for entry in $PACKAGES; do
    pkg=${entry%%:*}; cmd=${entry#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/bin/$cmd" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$missing"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "note: tests that need these Debian packages will fail without them:$missing (apt-get install$missing)"
fi
exit 0
