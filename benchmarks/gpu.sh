#!/usr/bin/env bash
# The GPU measurement of issue 7, in one device call (JAX backend; the device has no TensorFlow).
#
#   bash benchmarks/gpu.sh wheels        # here: fetch Keras and the small packages the device lacks into .whl/
#   bash benchmarks/gpu.sh run OUT_DIR   # on the device machine (run tool, carry [".whl"]): measure, write OUT_DIR
#
# What it measures: images per second of every method on conv_large (32x32x3, 32 labeled + 128
# unlabeled) and WRN-28-2, fp32 and bf16, with the ratio to supervised and the plain keras.Model.fit
# reference row (kzoo bench). Methods that need a pretrained model (lvat-*, manifold) get one trained
# for a few steps first. Not run in any session yet: no GPU was lent to the sessions so far.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  wheels)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    # the device image (KINDS.md) has jax, numpy, h5py, ml-dtypes, rich, absl-py, packaging; not these:
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl keras==3.15.1 namex optree
    ;;
  run)
    out=${2:?usage: gpu.sh run OUT_DIR}
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/device.txt" || true
    for model in conv_large wrn28_2; do
      python3 -m kzoo.bench --backends jax --jit true --precision float32,mixed_bfloat16 \
        --dataset synthetic32 --model "$model" --batch-labeled 32 --batch-unlabeled 128 --steps 100 --warmup 10 \
        --methods keras,supervised,vat,manifold-mixup,gan-ssl,ali-ssl \
        --json "$out/bench_$model.json" --markdown "$out/bench_$model.md" 2>&1 | tee "$out/log_$model.txt"
    done
    ;;
  *) echo "usage: $0 wheels | run OUT_DIR" >&2; exit 2 ;;
esac
