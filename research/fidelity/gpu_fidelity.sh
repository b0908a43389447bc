#!/usr/bin/env bash
# The fidelity tables of BENCHMARKS.md on one GPU (about 8 minutes on an H100), from the repository root:
#   COMFYUI_PATH=/path/to/ComfyUI bash research/fidelity/gpu_fidelity.sh results/
# 16-block testbed: the equal-compute table with keep sweeps (20 steps, CFG 4) and the few-step rows (4 steps,
# CFG 1); 8-block testbed: the table without sweeps; the 16-block model's motion. Each part stops starting new
# prompts after its time budget, so a slower GPU gives fewer prompts, never a missing table.
set -uo pipefail
out=${1:-results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
fid() { timeout "$1" python3 research/fidelity/fidelity.py --gpu --seeds 1 --budget-s "$(($1 - 60))" "${@:2}"; }
fid 260 --ckpt testbed/TAPE_demo_toy_model_16blocks.safetensors --out "$out/fidelity16.json"
fid 70 --ckpt testbed/TAPE_demo_toy_model_16blocks.safetensors --table few-step --steps 4 --cfg 1 --out "$out/fewstep4_16.json"
fid 90 --table main-no-sweep --out "$out/fidelity8.json"
PYTHONPATH=${COMFYUI_PATH:-.}:${PYTHONPATH:-} timeout 50 python3 -m research.testbed.motion --gpu \
  --ckpt testbed/TAPE_demo_toy_model_16blocks.safetensors --seeds 1 --every 3 --out "$out/motion16.json"
rm -f "$out"/*.md
