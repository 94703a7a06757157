#!/usr/bin/env bash
# The CUDA checks of docs/gpu.md in one time-capped script (issue 27). Run from the repository root:
#
#   WHEELS=path/to/wheels SPECTRUM_TUNE_CACHE=path/with/tiny-model OUT=out-dir bash benchmarks/gpu_check.sh
#
# WHEELS (optional): wheels of the packages the machine lacks (TRL, datasets, transformers >= 5.24,
# ...), installed into /tmp/site first on PYTHONPATH, beside this checkout, so `import spectrum_tune`
# is this repository. SPECTRUM_TUNE_CACHE: a cache that already holds the tiny model (building it
# takes minutes). Each step writes its whole output to $OUT/<step>.txt; this script's own log is
# $OUT/log. Steps: 1 benchmarks.gpu (the table), 2+3 benchmarks.exactness (prefix sharing and the
# prompt-once sampler), 3b benchmarks.bench_sample (its speed), then 4 the test suite and 5 the
# quick demo side by side. SMOKE=1 rehearses it on a CPU at tiny sizes.
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log") 2>&1
# offline: nothing may reach for a hub (the device machine has no network; a try would only wait)
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
SMOKE=${SMOKE:-0}
say() { echo "== $(date -u +%T) $*"; }

# step NAME CAP COMMAND...: run COMMAND under a time cap, its output to $OUT/NAME.txt, then its tail here
step() {
  local name=$1 cap=$2 start rc
  shift 2
  say "$name: $* (cap ${cap} s)"
  start=$(date +%s)
  timeout -k 10 "$cap" "$@" >"$OUT/$name.txt" 2>&1
  rc=$?
  say "$name: rc $rc, $(($(date +%s) - start)) s"
  grep -v "^\[gw" "$OUT/$name.txt" | tail -n "${TAIL:-25}"
}

if [ -n "${WHEELS:-}" ]; then
  say "installing $(ls "$WHEELS"/*.whl | wc -l) wheels into /tmp/site"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  # the console script, as an editable install would give it (tests and the demo call it)
  mkdir -p /tmp/bin
  printf '#!/bin/sh\nexec python3 -m spectrum_tune.cli "$@"\n' >/tmp/bin/spectrum-tune
  chmod +x /tmp/bin/spectrum-tune
  export PATH=/tmp/bin:$PATH
fi
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 | tee "$OUT/env.txt"
$PY - <<'EOF' 2>&1 | tee -a "$OUT/env.txt" || exit 1
import platform, torch, transformers, trl, peft, accelerate, datasets, spectrum_tune
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"transformers {transformers.__version__}, trl {trl.__version__}, peft {peft.__version__}, "
      f"accelerate {accelerate.__version__}, datasets {datasets.__version__}")
print("spectrum_tune from", spectrum_tune.__file__)
try:
    import bitsandbytes
    print("bitsandbytes", bitsandbytes.__version__)
except Exception as error:  # QLoRA rows are skipped without it
    print("bitsandbytes missing:", error)
assert transformers.__version__ >= "5.24", "transformers >= 5.24 is needed (the `cache` forward keyword)"
EOF
$PY -c "from spectrum_tune.world import tiny_model_path; print('tiny model:', tiny_model_path())" || exit 1

if [ "$SMOKE" = 1 ]; then
  step gpu 300 $PY -m benchmarks.gpu --smoke
  step exactness 300 $PY -m benchmarks.exactness --items 2 --samples 8
  step sample 120 $PY -m benchmarks.bench_sample --items 2 --samples 8
  exit 0
fi
SKIP=$($PY -c "import importlib.util as u; print('' if u.find_spec('bitsandbytes') else 'qlora')")
step gpu 200 $PY -m benchmarks.gpu ${SKIP:+--skip $SKIP}
step exactness 90 $PY -m benchmarks.exactness
step sample 40 $PY -m benchmarks.bench_sample --samples 30 100 --items 10

# 4 and 5 side by side (the suite's workers and the demo's two share the 16 cores and the GPU)
say "demo --quick and the test suite, side by side"
(step demo 180 $PY -m spectrum_tune.cli demo --quick --out /tmp/demo; cp /tmp/demo/report.md "$OUT/demo_report.md") &
demo=$!
# the suite as CI runs it: online settings unchanged (its hub tests use their own stand-ins)
TAIL=40 step pytest 240 env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE $PY -m pytest -v -n 8 -p no:cacheprovider --timeout 100 -rfE tests
# the demo only: a bare `wait` would also wait for the log's tee above, which never ends (it hung
# the first device run until its time limit)
wait "$demo"
say done
