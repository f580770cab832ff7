#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright (Playwright's own browser
# download cannot work offline). Install it when missing and we may; otherwise those tests skip.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: installing Debian chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "ensure_chromium: could not install chromium; browser tests will be skipped" >&2
else
  echo "ensure_chromium: /usr/bin/chromium missing and not root; browser tests will be skipped" >&2
fi
exit 0
