#!/usr/bin/env bash
# StarDist reference run: train StarDist's stock 2D recipe on our split for a wall-time budget,
# predict our val images, score them with our scorer (benchmarks/stardist_peer.py says how).
#
#   bash scripts/stardist_peer.sh --data ../shared/dsb2018/stage1_train \
#       --split <run>/split.json --out outputs/stardist --minutes 52
#
# All arguments go to benchmarks/stardist_peer.py (--seed, --model-dir, --steps-per-epoch,
# --max-epochs, --threads too); --data, --split and --out are also used for scoring.
# StarDist runs in its own virtual environment (TensorFlow, not the project's PyTorch one),
# created on first use at ${STARDIST_VENV:-$HOME/.cache/nuclei/stardist-venv} (~2.7 GB, about
# a minute from PyPI). Scoring uses the project's .venv (make install); the scores are also
# saved to OUT/scores.txt. Paths are taken relative to the current folder.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STARDIST_VENV:-$HOME/.cache/nuclei/stardist-venv}"
PYTHON_FOR_VENV="${STARDIST_PYTHON:-python3.11}"
# Versions that work together on Python 3.11 (tf-keras follows TensorFlow's version;
# TensorFlow 2.21 no longer pulls in tensorboard, which the stock config's logging needs).
PINS=(stardist==0.9.2 tensorflow-cpu==2.21.0 tf-keras==2.21.0 tensorboard==2.21.0 tifffile==2026.3.3)
STAMP="$VENV/.stardist-peer-installed"

die() {
    echo "stardist_peer: $*" >&2
    exit 1
}

# The arguments the scorer needs too.
data="" split="" out=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --data) data="${args[i + 1]:-}" ;;
        --data=*) data="${args[i]#--data=}" ;;
        --split) split="${args[i + 1]:-}" ;;
        --split=*) split="${args[i]#--split=}" ;;
        --out) out="${args[i + 1]:-}" ;;
        --out=*) out="${args[i]#--out=}" ;;
    esac
done
[[ -n "$data" && -n "$split" && -n "$out" ]] \
    || die "usage: bash scripts/stardist_peer.sh --data ROOT --split SPLIT_JSON --out DIR --minutes M [...]"
[[ -x "$REPO/.venv/bin/python" ]] || die "no project environment at $REPO/.venv (run make install first)"

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "${PINS[*]}" ]]; then
    command -v "$PYTHON_FOR_VENV" >/dev/null \
        || die "$PYTHON_FOR_VENV not found (set STARDIST_PYTHON to a Python 3.11 interpreter)"
    echo "stardist_peer: installing ${PINS[*]} into $VENV" >&2
    log="$(mktemp)"
    if ! { "$PYTHON_FOR_VENV" -m venv "$VENV" \
        && "$VENV/bin/python" -m pip install --retries 2 --upgrade pip \
        && "$VENV/bin/python" -m pip install --retries 2 "${PINS[@]}"; } >"$log" 2>&1; then
        die "could not install ${PINS[*]} into $VENV (no network or no PyPI?); full log: $log"
    fi
    rm -f "$log"
    echo "${PINS[*]}" >"$STAMP"
fi

export TF_USE_LEGACY_KERAS=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

"$VENV/bin/python" "$REPO/benchmarks/stardist_peer.py" "$@"
"$REPO/.venv/bin/python" "$REPO/scripts/score_predictions.py" "$out" "$data" --ids "$split" \
    | tee "$out/scores.txt"
