#!/bin/bash
# Three independent short runs (150 steps, seeds 1-3) trained (a) one after the other at 2 threads, (b) at once at
# 1 thread each, side by side in one session, then (c) at 1 thread one after the other (the numbers (b) must equal).
# Needs a journey folder with stage 01's splits.json and plan.json: ./compare.sh OUT
set -e
OUT=$1
P=${PYTHON:-.venv/bin/python}
J=reports/benchmarks/parallel-runs-cpu/job.py
LOG=reports/benchmarks/parallel-runs-cpu/runs.jsonl
: > $LOG
t0=$(date +%s.%N)
for s in 1 2 3; do $P $J $OUT seq2-$s 2 150 >> $LOG; done
t1=$(date +%s.%N)
for s in 1 2 3; do $P $J $OUT par1-$s 1 150 >> $LOG & done
wait
t2=$(date +%s.%N)
for s in 1 2 3; do $P $J $OUT seq1-$s 1 150 >> $LOG; done
t3=$(date +%s.%N)
echo "{\"sequential_2_threads_s\": $(echo "$t1 - $t0" | bc), \"at_once_1_thread_s\": $(echo "$t2 - $t1" | bc), \
\"sequential_1_thread_s\": $(echo "$t3 - $t2" | bc), \"date\": \"$(date -Iseconds)\", \"cores\": $(nproc), \
\"torch\": \"$($P -c 'import torch; print(torch.__version__)')\"}" >> $LOG
