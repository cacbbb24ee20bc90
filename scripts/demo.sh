#!/usr/bin/env bash
# Set up and run the main job on built-in data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
cargo run --quiet --release -p vesselkit-cli -- demo --out out/demo
echo
cargo run --quiet --release -p vesselkit-cli -- info out/demo/cine.dcm
