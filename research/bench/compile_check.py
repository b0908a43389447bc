"""Does the TAPE-patched model run under ComfyUI's TorchCompileModel, and what does compiling gain?

Short KSampler runs eager vs compiled, with and without TAPE. The compiled runs go twice: the first pays
compilation, the second is timed. Dynamo's counters (graph breaks, unique graphs) and every frame compilation
(function, recompile reason) are recorded per variant, so recompiles can be counted against the number of distinct
kept-token counts the schedule asks for.

Called from research.bench.gpu_speed (`--compile`: whole model and per block, constant keep 0.5), or on its own:

    COMFYUI_PATH=.comfyui TORCH_LOGS=recompiles,graph_breaks python -m research.bench.compile_check --model 1.3b \
        --res 480p --steps 8 --budget-s 280 \
        --variants eager_unpruned,eager_tape_default,compiled_blocks_tape_default,compiled_blocks_unpruned \
        --out results/
    python -m research.bench.compile_check --tiny --out results/compile-cpu     # CPU check of the script (aot_eager)

Variant names: eager_ / compiled_ (whole diffusion model, what the node does by default) / compiled_blocks_ (each
transformer block, `keys=[diffusion_model.blocks.<i>]`), then unpruned, tape0.5 (constant keep 0.5 after one dense
step) or tape_default (the node defaults: linear schedule, spread 0.2, one dense step).
Results: <out>/compile_<model>_<res>.json.
"""

from __future__ import annotations

import statistics
import time

from . import rows
from .sampling import run_ksampler

STEPS = 6
DEFAULT_PLAN = (
    "eager_unpruned",
    "eager_tape0.5",
    "compiled_tape0.5",
    "compiled_unpruned",
    "compiled_blocks_tape0.5",
    "compiled_blocks_unpruned",
)


def compiled(model, backend: str, per_block: bool = False):
    """What the TorchCompileModel node does (comfy_extras/nodes_torch_compile.py): torch.compile of the whole
    diffusion model; per_block compiles each transformer block instead (same helper, `keys`), which leaves
    TAPE's Python between the blocks eager."""
    from comfy_api.torch_helpers import set_torch_compile_wrapper

    m = model.clone()
    keys = None
    if per_block:
        keys = [f"diffusion_model.blocks.{i}" for i in range(len(m.model.diffusion_model.blocks))]
    set_torch_compile_wrapper(model=m, backend=backend, keys=keys)
    return m


def _split(name: str) -> tuple[str | None, str]:
    """variant name -> (compile mode None / 'model' / 'blocks', model kind)."""
    for prefix, comp in (("compiled_blocks_", "blocks"), ("compiled_", "model"), ("eager_", None)):
        if name.startswith(prefix):
            return comp, name[len(prefix) :]
    raise ValueError(f"unknown variant {name!r}")


def _models(model) -> dict:
    return {
        "unpruned": lambda: model,
        "tape0.5": lambda: rows.tape(model, 0.5, rows.constant_schedule()),
        "tape_default": lambda: rows.tape(model),
    }


def _compilations() -> list[dict]:
    """One entry per frame compilation since the last reset: function, whether it was a recompile and why."""
    try:
        from torch._dynamo.utils import get_compilation_metrics
    except ImportError:
        return []
    out = []
    for m in get_compilation_metrics():
        reason = getattr(m, "recompile_reason", None)
        out.append(
            {
                "co_name": getattr(m, "co_name", None),
                "co_firstlineno": getattr(m, "co_firstlineno", None),
                "recompile_reason": reason[:400] if reason else None,
                "graph_op_count": getattr(m, "graph_op_count", None),
                "fail_type": getattr(m, "fail_type", None),
            }
        )
    return out


def _reset():
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    try:
        from torch._dynamo.utils import clear_compilation_metrics

        clear_compilation_metrics()
    except ImportError:
        pass


def _counters() -> dict:
    from torch._dynamo.utils import counters

    breaks = {k[:200]: v for k, v in counters["graph_break"].items()}
    comps = _compilations()
    reasons = [c["recompile_reason"] for c in comps if c["recompile_reason"]]
    per_fn: dict[str, int] = {}
    for c in comps:
        if c["recompile_reason"]:
            key = f"{c['co_name']}:{c['co_firstlineno']}"
            per_fn[key] = per_fn.get(key, 0) + 1
    return {
        "graph_breaks": sum(breaks.values()),
        "graph_break_reasons": dict(list(breaks.items())[:12]),
        "stats": dict(counters["stats"]),
        "frame_compilations": len(comps),
        "recompiles": len(reasons),
        "recompiles_per_function": per_fn,
        "max_recompiles_of_one_function": max(per_fn.values(), default=0),
        "recompile_reasons": reasons[:20],
        "compilations": comps[:40],
    }


def _later_steps_ms(row) -> float:
    return statistics.median([s["ms"] for s in row["steps"][1:]])


def compile_check(
    model, latent, conds, clock, cap, backend: str, time_left, out: dict, save, plan=DEFAULT_PLAN, steps=STEPS
) -> dict:
    """Fills `out` variant by variant and calls save() after each (a compile can outlast the time budget)."""
    import torch._dynamo

    makers = _models(model)
    built = {}
    out.update(
        backend=backend,
        steps=steps,
        recompile_limit=getattr(torch._dynamo.config, "recompile_limit", None),
        automatic_dynamic_shapes=getattr(torch._dynamo.config, "automatic_dynamic_shapes", None),
    )
    for name in plan:
        comp, kind = _split(name)
        if time_left() < {None: 30, "model": 150, "blocks": 90}[comp]:
            out[name] = {"skipped": "not enough time left in the --budget-s budget"}
            continue
        if kind not in built:
            built[kind] = makers[kind]()
        m = built[kind]
        try:
            if comp:
                _reset()
                m = compiled(m, backend, per_block=comp == "blocks")
                t0 = time.perf_counter()
                run_ksampler(m, latent, conds, clock, cap, steps=steps, hook=False)
                first_s = time.perf_counter() - t0
                out[name] = {"first_run_s": first_s, "dynamo_after_first_run": _counters()}
                save()
                print(f"[compile] {name}: first (compiling) run {first_s:.0f}s", flush=True)
                eager_s = out.get(f"eager_{kind}", {}).get("wall_s", 0.0)
                if time_left() < 1.5 * eager_s + 15:
                    out[name]["skipped_timed_run"] = "not enough time left in the --budget-s budget"
                    continue
                row = run_ksampler(m, latent, conds, clock, cap, steps=steps, hook=False)
                row["first_run_s"] = first_s
                row["dynamo_after_first_run"] = out[name]["dynamo_after_first_run"]
                row["dynamo"] = _counters()  # a recompile in the timed run would show here
            else:
                run_ksampler(m, latent, conds, clock, cap, steps=steps, hook=False)  # first kernels of every shape
                row = run_ksampler(m, latent, conds, clock, cap, steps=steps, hook=False)
            row["later_steps_median_ms"] = _later_steps_ms(row)
            out[name] = row
        except Exception as e:  # the question is whether it runs: record the failure, keep the rest
            out[name] = {"error": f"{type(e).__name__}: {e}"[:3000]}
        print(
            f"[compile] {name}: "
            + str(
                {
                    k: v
                    for k, v in out[name].items()
                    if k in ("wall_s", "later_steps_median_ms", "first_run_s", "error", "skipped")
                }
            ),
            flush=True,
        )
        if "dynamo" in out[name]:
            d = out[name]["dynamo"]
            print(
                f"[compile] {name}: graph breaks {d['graph_breaks']}, unique graphs "
                f"{d['stats'].get('unique_graphs')}, frame compilations {d['frame_compilations']}, recompiles "
                f"{d['recompiles']} (at most {d['max_recompiles_of_one_function']} of one function)",
                flush=True,
            )
        save()
    for name in plan:
        comp, kind = _split(name)
        e, c = out.get(f"eager_{kind}", {}), out.get(name, {})
        if comp and "later_steps_median_ms" in e and "later_steps_median_ms" in c:
            out[f"gain_{name}"] = e["later_steps_median_ms"] / c["later_steps_median_ms"]
            out[f"gain_wall_{name}"] = e["wall_s"] / c["wall_s"]
    for how in ("compiled", "compiled_blocks"):
        u, t = out.get(f"{how}_unpruned", {}), out.get(f"{how}_tape_default", {})
        if "later_steps_median_ms" in u and "later_steps_median_ms" in t:
            out[f"speedup_{how}_tape_default_vs_{how}_unpruned"] = {
                "later_steps_median": u["later_steps_median_ms"] / t["later_steps_median_ms"],
                "wall": u["wall_s"] / t["wall_s"],
            }
    return out


def distinct_keep_counts(steps: int, tokens_per_frame: int) -> dict:
    """The node default schedule's keep ratio per step and the distinct kept-token counts per frame it asks for."""
    from comfyui_tape.tape_core import BudgetSchedule
    from comfyui_tape.tape_core.selection import keep_count

    ratios = BudgetSchedule().ratios(steps, 0.5)
    counts = sorted({keep_count(r, tokens_per_frame) for r in ratios if r < 1.0})
    return {"ratios": ratios, "tokens_per_frame": tokens_per_frame, "distinct_pruned_counts": counts}


def main():
    import argparse
    import json
    from pathlib import Path

    from .env import Clock, import_comfy, install_log_capture, load_pack

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="1.3b", choices=["1.3b", "14b", "tiny"])
    p.add_argument("--res", default="480p")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument(
        "--variants",
        default="eager_unpruned,eager_tape_default,compiled_blocks_tape_default,compiled_blocks_unpruned",
    )
    p.add_argument("--backend", default=None, help="default: inductor on GPU, aot_eager on CPU")
    p.add_argument("--budget-s", type=float, default=280.0, help="start no variant that cannot finish in time")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--out", default="out")
    a = p.parse_args()
    if a.tiny:
        a.model, a.res = "tiny", "tiny"
    t_start = time.monotonic()
    device = "cpu" if a.tiny else "cuda"
    root = import_comfy(device)
    load_pack()
    cap = install_log_capture()
    import torch

    from .wan_build import build_state_dict, empty_latent, load_model, text_conds, token_grid

    backend = a.backend or ("inductor" if device == "cuda" else "aot_eager")
    clock = Clock(device)
    grid = token_grid(a.res)
    res = {
        "meta": {
            "model": a.model,
            "res": a.res,
            "date": time.strftime("%Y-%m-%d"),
            "torch": torch.__version__,
            "cfg_batch": 2,
            "schedule_tape_default": distinct_keep_counts(a.steps, grid[1] * grid[2]),
        },
        "compile": {},
    }
    try:
        res["meta"]["comfyui_version"] = (Path(root) / "comfyui_version.py").read_text().split('"')[1]
    except (OSError, IndexError):
        pass
    if device == "cuda":
        res["meta"]["gpu"] = torch.cuda.get_device_name()
    path = Path(a.out) / f"compile_{a.model}_{a.res}.json"
    path.parent.mkdir(parents=True, exist_ok=True)

    def save():
        res["meta"]["elapsed_s"] = time.monotonic() - t_start
        path.write_text(json.dumps(res, indent=1, default=str))

    def time_left():
        return a.budget_s - (time.monotonic() - t_start)

    with torch.inference_mode():
        model = load_model(build_state_dict(a.model, device))
        compile_check(
            model,
            empty_latent(a.res),
            text_conds(),
            clock,
            cap,
            backend,
            time_left,
            res["compile"],
            save,
            plan=tuple(a.variants.split(",")),
            steps=a.steps,
        )
    save()
    c = res["compile"]
    print(f"[compile] distinct pruned token counts per frame: {res['meta']['schedule_tape_default']}", flush=True)
    for k, v in c.items():
        if k.startswith(("gain_", "speedup_")):
            print(f"[compile] {k}: {v}", flush=True)


if __name__ == "__main__":
    main()
