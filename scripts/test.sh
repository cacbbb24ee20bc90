#!/usr/bin/env bash
# Set up and run every test: Rust (all crates) and Python (the extension built in place).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

echo "== cargo test"
cargo test --workspace --exclude vesselkit-python --no-fail-fast

echo "== building the Python extension"
VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH" \
  .venv/bin/maturin develop --quiet --manifest-path python/Cargo.toml

echo "== pytest"
.venv/bin/python -m pytest -q python/tests
