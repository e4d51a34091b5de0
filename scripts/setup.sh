#!/usr/bin/env bash
# Set up everything soundkeep needs on a Debian machine with Python >= 3.11:
# the Debian packages (only when missing) and a local virtual environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(libchromaprint1 sonic-pi-samples singularity-music)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "soundkeep needs Python >= 3.11")'
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.soundkeep-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing soundkeep and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,ray]'
  echo "$want" > "$stamp"
fi
