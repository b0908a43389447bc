"""Peak VRAM of TAPE's reuse cache against unpruned, through ComfyUI's sampling path (2 steps: the dense warm-up
step fills the cache, the pruned step holds it and its decode buffer).

    COMFYUI_PATH=.comfyui python -m research.bench.vram --model 14b --res 720p --out results/
    python -m research.bench.vram --tiny --out results/vram-cpu     # CPU check of the script

Rows: unpruned; the default (fp8 cache per reselection span); bf16 cache; cache per block; cache on the host.
Results: <out>/vram_<model>_<res>.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .env import Clock, import_comfy, install_log_capture, load_pack

ROWS = {
    "unpruned": None,
    "tape_default": {},
    "tape_bf16_cache": {"cache_format": "bf16"},
    "tape_block_cache": {"cache_slots": "block"},
    "tape_cpu_cache": {"cache_device": "cpu"},
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="14b", choices=["1.3b", "14b", "tiny"])
    p.add_argument("--res", default="720p")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--out", default="out")
    a = p.parse_args()
    if a.tiny:
        a.model, a.res = "tiny", "tiny"
    device = "cpu" if a.tiny else "cuda"
    import_comfy(device)
    load_pack()
    cap = install_log_capture()
    import torch

    from . import rows
    from .sampling import probed_base, run_ksampler
    from .wan_build import build_state_dict, empty_latent, load_model, text_conds

    clock = Clock(device)
    out = {"meta": {"model": a.model, "res": a.res, "date": time.strftime("%Y-%m-%d"), "steps": 2}, "rows": {}}
    if device == "cuda":
        out["meta"]["gpu"] = torch.cuda.get_device_name()
    path = Path(a.out) / f"vram_{a.model}_{a.res}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        model = load_model(build_state_dict(a.model, device))
        base = probed_base(model)
        latent, conds = empty_latent(a.res), text_conds()
        run_ksampler(base, latent, conds, clock, cap, steps=1)  # load + first kernels outside the measured rows
        for name in a.rows.split(","):
            kw = ROWS[name]
            m = base if kw is None else rows.tape(base, **kw)
            if device == "cuda":
                torch.cuda.empty_cache()
            row = run_ksampler(m, latent, conds, clock, cap, steps=2)
            out["rows"][name] = {k: row.get(k) for k in ("wall_s", "peak_gb", "reuse_cache_gb")}
            out["rows"][name]["summary"] = row.get("tape", {}).get("summary")
            print(f"[vram] {name}: {out['rows'][name]}", flush=True)
            path.write_text(json.dumps(out, indent=1))
    ref = out["rows"].get("unpruned", {}).get("peak_gb")
    print("| row | peak GB | vs unpruned | cache GB on GPU |\n|---|---|---|---|")
    for name, r in out["rows"].items():
        peak = r.get("peak_gb")
        rel = f"{100 * (peak / ref - 1):+.1f}%" if peak and ref else "-"
        print(f"| {name} | {peak or 0:.2f} | {rel} | {r.get('reuse_cache_gb') or 0:.2f} |")


if __name__ == "__main__":
    main()
