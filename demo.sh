#!/usr/bin/env bash
# Build the demo archive and run the whole pipeline on it:
# a synthetic catalog of the reference shape, real Creative Commons audio from Debian
# packages (catalogued from its tags, scanned, linked), the preservation plan under a budget,
# its coverage plot, and the re-encoding it asks for.
# Usage: ./demo.sh [TRACKS]   (default 200000; sets everything up on first run)
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
TRACKS=${1:-200000}
ARCHIVE=demo-archive
WORK=demo-archive.work
export SOUNDKEEP_ARCHIVE=$ARCHIVE
sk() { echo; echo "\$ soundkeep $*"; .venv/bin/soundkeep "$@"; }

rm -rf "$ARCHIVE" "$WORK"
sk init
sk synth --tracks "$TRACKS" --seed 7 --out "$WORK/catalog"
sk ingest "$WORK/catalog"
# Real openly licensed audio: its catalog rows come from its own tags and licence.
sk ingest --format tags /usr/share/games/singularity/music
sk ingest --format tags --rights CC0-1.0 /usr/share/sonic-pi/samples
# What tracks keep of their artists and releases, so the plan need not make it each time.
sk refresh
sk stats
sk scan --copy /usr/share/games/singularity/music /usr/share/sonic-pi/samples
sk holdings
# The reference budget (300 TB for 256 M tracks) scaled to this catalog.
BUDGET=$(( 300 * 1000 * 1000 * 1000 * 1000 / 256000000 * (TRACKS + 200) ))
sk plan --budget "$BUDGET"
sk coverage --png "$ARCHIVE/coverage.png"
sk encode
sk quarantine --limit 10
echo
echo "demo archive ready in $ARCHIVE (coverage plot: $ARCHIVE/coverage.png)"
