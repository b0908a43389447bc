"""Does GPU memory grow when the same TAPE-patched model samples many times in a row?

One patched model (the node defaults), `--runs` KSampler runs in a loop through ComfyUI's sampling code, and
torch.cuda.memory_allocated() after each (synchronised, after gc): it must stay flat. Also counts live tensors after
each run and TapeRun objects still alive after the loop (each run's state must end with its run).

The bench's log capture keeps every log record, and TAPE's end-of-run summary record carries that run's RunStats
(whose jitter sum is a 0-dim tensor on the model device: 512 bytes of GPU memory a run). ComfyUI's own logger keeps
formatted strings only, so by default the loop drops the captured records after each run; --keep-records keeps them
(what the first GPU measurement did: +512 bytes a run, exactly one such tensor per retained record).

    COMFYUI_PATH=.comfyui python -m research.bench.memory_loop --model 1.3b --out results/
    python -m research.bench.memory_loop --tiny --runs 5 --out results/memloop-cpu     # CPU check of the script

Results: <out>/memory_loop_<model>.json and one line on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import time
from pathlib import Path

from .env import Clock, import_comfy, install_log_capture, load_pack


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="1.3b", choices=["1.3b", "14b", "tiny"])
    p.add_argument("--frames", type=int, default=3, help="latent frames (3 = 9 video frames)")
    p.add_argument("--size", type=int, default=32, help="latent height and width (32 = 256 px)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--keep-records", action="store_true", help="keep the captured log records (see above)")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--out", default="out")
    a = p.parse_args()
    if a.tiny:
        a.model, a.size, a.frames = "tiny", 16, 3
    device = "cpu" if a.tiny else "cuda"
    import_comfy(device)
    load_pack()
    cap = install_log_capture()
    import torch
    from comfyui_tape.integration.runtime import TapeRun

    from . import rows
    from .sampling import run_ksampler
    from .wan_build import build_state_dict, load_model, text_conds

    cuda = device == "cuda"

    def allocated() -> int:
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            return torch.cuda.memory_allocated()
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # CPU: peak RSS, growth shows as a new peak

    def live_tensors() -> int:
        return sum(1 for o in gc.get_objects() if torch.is_tensor(o))

    clock = Clock(device)
    latent = torch.zeros(1, 16, a.frames, a.size, a.size)
    conds = text_conds()
    out = {
        "meta": {
            "model": a.model,
            "latent": list(latent.shape),
            "steps": a.steps,
            "runs": a.runs,
            "date": time.strftime("%Y-%m-%d"),
            "torch": torch.__version__,
            "log_records": "kept" if a.keep_records else "dropped after each run",
            "measure": "torch.cuda.memory_allocated() after each run" if cuda else "peak RSS (CPU check)",
        }
    }
    if cuda:
        out["meta"]["gpu"] = torch.cuda.get_device_name()
    path = Path(a.out) / f"memory_loop_{a.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch.inference_mode():
        model = load_model(build_state_dict(a.model, device))
        run_ksampler(model, latent, conds, clock, cap, steps=a.steps)  # load + first kernels
        out["after_unpruned_run_bytes"] = allocated()
        m = rows.tape(model)
        first = run_ksampler(m, latent, conds, clock, cap, steps=a.steps)  # warm-up run of the patched model
        out["summary"] = first.get("tape", {}).get("summary")
        out["after_warmup_run_bytes"] = allocated()
        if not a.keep_records:
            cap.records.clear()
        after, peaks, tensors = [], [], []
        for _ in range(a.runs):
            row = run_ksampler(m, latent, conds, clock, cap, steps=a.steps)
            if not a.keep_records:
                cap.records.clear()
            after.append(allocated())
            tensors.append(live_tensors())
            peaks.append(row.get("peak_gb"))
    gc.collect()
    out["after_each_run_bytes"] = after
    out["peak_gb_each_run"] = peaks
    out["live_tensors_after_each_run"] = tensors
    out["live_tensor_growth_first_to_last"] = tensors[-1] - tensors[0]
    out["growth_bytes_first_to_last"] = after[-1] - after[0]
    out["spread_bytes"] = max(after) - min(after)
    out["growth_bytes_vs_unpruned"] = after[-1] - out["after_unpruned_run_bytes"]
    out["taperuns_alive_after_loop"] = sum(1 for o in gc.get_objects() if type(o) is TapeRun)
    out["elapsed_s"] = time.perf_counter() - t0
    path.write_text(json.dumps(out, indent=1))
    print(
        f"[memory_loop] {a.runs} runs: first {after[0]} B, last {after[-1]} B, "
        f"growth {out['growth_bytes_first_to_last']} B, spread {out['spread_bytes']} B, "
        f"vs after an unpruned run {out['growth_bytes_vs_unpruned']} B, "
        f"live tensors {tensors[0]} -> {tensors[-1]}, TapeRuns alive {out['taperuns_alive_after_loop']}; "
        f"{out['summary']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
