"""Run the testbed fidelity benchmark (BENCHMARKS.md, "Fidelity").

    python research/fidelity/fidelity.py --gpu --out results/fidelity16.json \
        --ckpt testbed/TAPE_demo_toy_model_16blocks.safetensors
    python research/fidelity/fidelity.py --out results/fewstep.json --table few-step --steps 4 --cfg 1 --gpu

Loads a testbed checkpoint through ComfyUI's UNETLoader path, samples every configuration of
research/testbed/fidelity.py (--table main: the equal-compute table and the keep sweeps; few-step: the 4-8-step
CFG-1 rows) for each prompt x seed against the unpruned video of the same prompt and seed, and writes JSON plus a
markdown table.
"""

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # comfy_harness: find + import ComfyUI, load this repo as a package


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/fidelity.json")
    p.add_argument("--ckpt", default="testbed/TAPE_demo_toy_model_8blocks.safetensors")
    p.add_argument(
        "--table", default="main", choices=["main", "main-no-sweep", "few-step", "two-stage", "frontier", "warmup"]
    )
    p.add_argument("--cfg", type=float, default=4.0)
    p.add_argument("--budget-s", type=float, default=0.0, help="start no new prompt after this long (0 = no limit)")
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--prompts", type=int, default=12)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--keep", type=float, default=0.5)
    p.add_argument("--easycache", type=float, nargs="*", default=[0.02, 0.05, 0.1])
    args = p.parse_args()

    from comfy_harness import import_comfy, load_pack

    sys.path.insert(0, str(REPO))
    from research.bench.env import stub_av_if_missing  # PyAV (video file I/O, unused here) is absent on the GPU machine

    stub_av_if_missing()
    import_comfy(cpu=not args.gpu)
    load_pack()
    from comfyui_tape.research.testbed import fidelity
    from comfyui_tape.research.testbed.sample import load_model

    model = load_model(str(REPO / args.ckpt))
    if args.table == "few-step":
        rows = fidelity.few_step_variants(args.keep)
    elif args.table == "two-stage":
        rows = fidelity.two_stage_variants(args.keep)
    elif args.table == "frontier":
        rows = fidelity.frontier_variants()
    elif args.table == "warmup":
        rows = fidelity.warmup_variants(args.keep)
    else:
        sweep = fidelity.SWEEP_KEEPS if args.table == "main" else ()
        rows = fidelity.variants(args.keep, easycache_thresholds=tuple(args.easycache), sweep_keeps=sweep)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def save_partial(msg, results):  # a run cut short still leaves its finished samples behind
        print(msg, f"{time.time() - t0:.0f} s", flush=True)
        out.write_text(json.dumps({"summary": fidelity.summarise(results), "samples": results}, indent=1))

    res = fidelity.run(
        model,
        fidelity.PROMPTS[: args.prompts],
        tuple(range(1, args.seeds + 1)),
        args.frames,
        args.size,
        args.steps,
        rows,
        progress=save_partial,
        cfg=args.cfg,
        stop=(lambda: time.time() - t0 > args.budget_s) if args.budget_s else None,
        two_stage=args.steps // 2 if args.table == "two-stage" else 0,
    )
    samples = len(next(iter(res["samples"].values()), []))
    res["meta"] = vars(args) | {"seconds": time.time() - t0, "samples_per_row": samples}
    out.write_text(json.dumps(res, indent=1))
    table = fidelity.markdown_table(res["summary"])
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
