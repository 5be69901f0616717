#!/usr/bin/env bash
# Every GPU check of nasdb as one script, for a lent GPU machine (the tool library's `device`).
#
# That machine has Python 3.12 with torch and no PostgreSQL, Fashion-MNIST or nasdb dependencies,
# and gives a session about 15 minutes in all. So, here first:
#
#   make device-bundle          # .device/: Fashion-MNIST and Python 3.12 wheels (about 57 MB)
#
# then two calls of the device tool's run, one after the other on the warm machine (a call may
# run 10 minutes; start-up and both calls fit the 15):
#
#   command: bash benchmarks/gpu_device.sh checks    carry: [".device"]    timeout_s: 540
#   command: bash benchmarks/gpu_device.sh search    carry: [".device"]    timeout_s: 420
#
# `checks` runs the CUDA tests and benchmarks/gpu_throughput.py (the issue's throughput, slot,
# precision and 10-epoch reference targets); `search` runs the search-outcome default for 300 s on
# the GPU (target: >= 0.925 under 100k parameters within 5 minutes). Each step has its own time
# limit, so one that hangs leaves the next its time; each log lands in $OUT.
set -uo pipefail
what=${1:-}
case "$what" in checks|search) ;; *) echo "usage: bash benchmarks/gpu_device.sh checks|search"; exit 2;; esac
out=${OUT:-/tmp/nasdb-gpu-out}
mkdir -p "$out"
test -d .device/whl || { echo "error: no .device/whl here: run 'make device-bundle' and carry .device"; exit 2; }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .device/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p /usr/share/datasets/fashion-mnist && cp .device/data/*.gz /usr/share/datasets/fashion-mnist/

step() {  # step NAME SECONDS COMMAND...: run COMMAND under a time limit, its output to $out/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name: $* (limit ${limit} s)"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
  echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$out/gpu.txt"
if [ "$what" = checks ]; then
step tests 90 python3 -m pytest -q -p no:cacheprovider -x tests/trainers/test_devices.py \
  tests/trainers/test_memory.py tests/trainers/test_supervisor.py tests/search/test_shapes.py
step gpu_throughput 420 python3 benchmarks/gpu_throughput.py
else
step search_outcome 390 python3 benchmarks/search_outcome.py --budget-seconds 300 --methods default
fi
