"""GPU speed benchmark of TAPE on Wan through ComfyUI's real sampling path. One run measures one model size.

  COMFYUI_PATH=.comfyui python -m research.bench.gpu_speed --model 1.3b --res 480p --mode full --compile --out results/
  COMFYUI_PATH=.comfyui python -m research.bench.gpu_speed --model 14b --res 480p 720p --mode steps \
      --easycache-from research/bench/results/gpu_1.3b.json --out results/
  python -m research.bench.gpu_speed --tiny --mode full --compile --out results/bench-cpu   # CPU check of the script

--mode full: every row is a real 30-step KSampler run (measured end to end), plus the per-step probe runs that
  --mode steps uses, so the composition can be checked against the measured runs.
--mode steps: per-step probe runs only; 30-step end-to-end times are COMPOSED (research/bench/compose.py).
Results: <out>/gpu_<model>.json (rewritten after every section) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .env import Clock, run_meta, start_bench


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="1.3b", choices=["1.3b", "14b", "tiny"])
    p.add_argument("--res", nargs="+", default=["480p"])
    p.add_argument("--mode", default="full", choices=["full", "steps"])
    p.add_argument(
        "--sections",
        default="blocks,rows,probes,repeat",
        help="comma list of: blocks, shapes, rows (full mode only), probes, repeat",
    )
    p.add_argument("--compile", action="store_true", help="also run the torch.compile check (first resolution)")
    p.add_argument("--compile-backend", default=None, help="default: inductor on GPU, aot_eager on CPU")
    p.add_argument(
        "--easycache-from",
        default=None,
        help="results JSON whose measured EasyCache skip pattern is used to compose the EasyCache rows in --mode steps",
    )
    p.add_argument(
        "--probe-variants",
        default="",
        help="comma list of further TAPE probes, each the default with settings changed: fast_start, "
        "block0_pruned, light_warmup (research/bench/rows.py PROBE_VARIANTS)",
    )
    p.add_argument("--tiny", action="store_true", help="tiny model and latent on the CPU (tests the script)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rows", default=None, help="comma-separated row names to run (default: all)")
    p.add_argument("--budget-s", type=float, default=560.0, help="stop starting new work after this long")
    p.add_argument("--out", default="out")
    a = p.parse_args()
    if a.tiny:
        a.model, a.res = "tiny", ["tiny"]
    a.sections = set(a.sections.split(","))
    return a


def main():
    a = parse_args()
    t_start = time.monotonic()

    def time_left():
        return a.budget_s - (time.monotonic() - t_start)

    device, root, cap = start_bench(a.tiny)
    import torch

    from . import report
    from .runner import run_resolution
    from .wan_build import build_state_dict, load_model

    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"gpu_{a.model}.json"
    res = {"meta": meta(a, root, torch, device), "resolutions": {}}

    def save():
        res["meta"]["elapsed_s"] = time.monotonic() - t_start
        path.write_text(json.dumps(res, indent=1, default=str))

    clock = Clock(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        sd = build_state_dict(a.model, device)
        model = load_model(sd)
        del sd
        if device == "cuda":
            torch.cuda.empty_cache()
            res["meta"]["weights_gb"] = torch.cuda.memory_allocated() / 2**30
        res["meta"]["build_load_s"] = time.perf_counter() - t0
        print(f"[bench] model {a.model} built and loaded in {res['meta']['build_load_s']:.1f}s", flush=True)
        easy = json.loads(Path(a.easycache_from).read_text()) if a.easycache_from else None
        for i, r in enumerate(a.res):
            res["resolutions"][r] = {}
            run_resolution(
                res["resolutions"][r],
                model,
                r,
                a,
                clock,
                cap,
                time_left,
                save,
                compile_here=a.compile and i == 0,
                easy_src=easy,
            )
            save()
    save()
    print(report.summary_text(res), flush=True)


def meta(a, root, torch, device) -> dict:
    fields = {
        "model": a.model,
        "resolutions": a.res,
        "mode": a.mode,
        "steps": a.steps,
    }
    m = run_meta(root, torch, device, **fields)
    return m


if __name__ == "__main__":
    main()
