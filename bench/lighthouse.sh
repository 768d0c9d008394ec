#!/bin/sh
# Lighthouse's accessibility and best-practices scores of /dashboard/, /dashboard/wall/,
# /ppms/ and /ppms/ecole/ on the embedded demo town, in Debian's chromium (CHROME_PATH to
# use another). Installs the pinned lighthouse into var/tools/lighthouse on first run
# (npm). The last line is JSON with a11y_min and best_practices_min; targets: 95 each.
set -eu
cd "$(dirname "$0")/.."
LIGHTHOUSE_VERSION=12.2.3
export LIGHTHOUSE="var/tools/lighthouse/node_modules/.bin/lighthouse"
if [ "$("$LIGHTHOUSE" --version 2>/dev/null || true)" != "$LIGHTHOUSE_VERSION" ]; then
    npm install --prefix var/tools/lighthouse --no-audit --no-fund --silent \
        "lighthouse@$LIGHTHOUSE_VERSION" >&2
fi
exec .venv/bin/python bench/lighthouse.py
