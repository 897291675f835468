#!/usr/bin/env bash
# Every GPU row of the benchmarks, in one run of under 8 minutes on one NVIDIA GPU.
#
# Run from the repository root on a machine with CUDA, with the package importable (an installed environment, or
# PYTHONPATH=$PWD with torch, torchvision, lightning, torchmetrics and timm present):
#   bash benchmarks/gpu.sh [OUTPUT_FOLDER]
# Each benchmark prints its baseline, measured in the same process, and the ratio; its output also goes to
# OUTPUT_FOLDER/<name>.txt (default: benchmarks/gpu-results). Each step has its own time limit, so one that hangs
# cannot take the others' time. The numbers go into benchmarks/README.md with the GPU's name (printed first).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/gpu-results}"
mkdir -p "$out"
python="${PYTHON:-python3}"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1

"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" \
    | tee "$out/device.txt" || exit 1

step() {  # step NAME SECONDS SCRIPT ARGS...
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s)"
    timeout "$limit" "$python" "$@" 2>&1 | tee "$out/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

step augment 60 benchmarks/augment.py --device cuda --sizes 32 224 --repeats 3
step channels_last 60 benchmarks/channels_last.py --device cuda --batch 256 --size 32
step throughput 150 benchmarks/throughput.py --devices cuda --repeats 3
step tta_ensemble 90 benchmarks/tta_ensemble.py --device cuda --repeats 10
step policies 60 benchmarks/policies.py --device cuda --size 32 --repeats 3
