#!/usr/bin/env bash
# Here (where pip reaches PyPI): download into .whl/ the wheels of the packages nuclei needs
# that an offline GPU machine's image lacks, in the versions of this checkout's .venv, for that
# machine's Python 3.12 on x86-64 Linux. Then copy the repository there with .whl/ and .device/
# and run scripts/device/figures.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
MISSING=(hydra-core omegaconf segmentation-models-pytorch albumentations albucore pydantic
         pydantic-core annotated-types typing-inspection stringzilla simsimd roifile)
version_of() { "$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
rm -rf .whl && mkdir -p .whl
specs=()
for name in "${MISSING[@]}"; do specs+=("$name==$(version_of "$name")"); done
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 "${platforms[@]}" -d .whl "${specs[@]}"
# hydra's parser runtime is published as a source archive only: build its (pure) wheel here.
"$PYTHON" -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$(version_of antlr4-python3-runtime)"
ls -s --block-size=K .whl && du -sh .whl
