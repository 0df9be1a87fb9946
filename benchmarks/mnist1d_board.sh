#!/bin/sh
# The MNIST-1D leaderboard (issue 24): the sections of benchmarks/grids/mnist1d.json, resumable from the cache in
# benchmarks/results/compare-mnist1d/cache/ (rerun this to continue; finished trials and seeds are reused).
# Runs at low priority on the shared machine; the log goes outside git.
cd "$(dirname "$0")/.." || exit 1
LOG="${KZOO_BOARD_LOG:-/tmp/kzoo-mnist1d-board.log}"
PYTHONPATH="$PWD" nohup nice -n 10 .venv/bin/python benchmarks/mnist1d_board.py "$@" >> "$LOG" 2>&1 &
echo "$!" > "${LOG%.log}.pid"
echo "board started: PID $! (log $LOG)"
