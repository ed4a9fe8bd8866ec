#!/usr/bin/env bash
# The GPU checks and benchmarks of the CUDA path, as one script for the GPU machine (CUDA, no .NET SDK).
# Prepare here:  ../shared/tools/device-publish benchmarks/Kiln.Benchmarks/Kiln.Benchmarks.csproj
#                cp ../shared/data/tinyshakespeare.txt .device/
# Run there (carry .device):  . .device/env.sh && kiln_unpack Kiln.Benchmarks && bash benchmarks/device-check.sh
# Logs go to $OUT (or ./device-logs). Exit status: that of gpu-check.
set -uo pipefail
out=${OUT:-device-logs}; mkdir -p "$out"
app=/tmp/Kiln.Benchmarks/Kiln.Benchmarks
data=${KILN_DATA:-.device/tinyshakespeare.txt}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
timeout 240 "$app" gpu-check --device=cuda:0 2>&1 | tee "$out/gpu-check.txt"; status=${PIPESTATUS[0]}
timeout 120 "$app" gpt --device=cuda:0 --precision=bf16 --batch=16 --context=256 --steps=30 --profile --data="$data" 2>&1 | tee "$out/gpt-bf16.txt"
timeout 60 "$app" gpt --device=cuda:0 --precision=f32 --batch=16 --context=256 --steps=10 --data="$data" 2>&1 | tee "$out/gpt-f32.txt"
exit "$status"
