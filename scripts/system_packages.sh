#!/usr/bin/env bash
# Debian packages the test suite needs, installed when missing (idempotent, quiet):
#   chromium    the run report's test loads the page in headless Chromium;
#   postgresql  the shared metadata store's tests start a real PostgreSQL server.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "system_packages.sh: need root or sudo to install ${need[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "installing Debian packages: ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
