"""Does the TAPE-patched model run under ComfyUI's TorchCompileModel, and what does compiling gain?

Short KSampler runs (6 steps, constant keep 0.5 after one dense step) eager vs compiled, with and without TAPE.
The compiled runs go twice: the first pays compilation, the second is timed. Dynamo's counters (graph breaks,
unique graphs, recompiles) are recorded per variant.
"""

from __future__ import annotations

import statistics
import time

from . import rows
from .sampling import run_ksampler

STEPS = 6


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


def _counters() -> dict:
    from torch._dynamo.utils import counters

    breaks = {k[:200]: v for k, v in counters["graph_break"].items()}
    return {
        "graph_breaks": sum(breaks.values()),
        "graph_break_reasons": dict(list(breaks.items())[:12]),
        "stats": dict(counters["stats"]),
        "recompiles": dict(counters.get("recompiles", {})),
    }


def _later_steps_ms(row) -> float:
    return statistics.median([s["ms"] for s in row["steps"][1:]])


def compile_check(model, latent, conds, clock, cap, backend: str, time_left, out: dict, save) -> dict:
    """Fills `out` variant by variant and calls save() after each (a compile can outlast the time budget)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    tape_m = rows.tape(model, 0.5, rows.constant_schedule())
    plan = [
        ("eager_unpruned", model, None),
        ("eager_tape0.5", tape_m, None),
        ("compiled_tape0.5", tape_m, "model"),
        ("compiled_unpruned", model, "model"),
        ("compiled_blocks_tape0.5", tape_m, "blocks"),
        ("compiled_blocks_unpruned", model, "blocks"),
    ]
    out.update(backend=backend, steps=STEPS, recompile_limit=getattr(torch._dynamo.config, "recompile_limit", None))
    for name, m, comp in plan:
        if time_left() < {None: 30, "model": 150, "blocks": 90}[comp]:
            out[name] = {"skipped": "not enough time left in the --budget-s budget"}
            continue
        try:
            if comp:
                torch._dynamo.reset()
                counters.clear()
                m = compiled(m, backend, per_block=comp == "blocks")
                t0 = time.perf_counter()
                run_ksampler(m, latent, conds, clock, cap, steps=STEPS, hook=False)
                first_s = time.perf_counter() - t0
                out[name] = {"first_run_s": first_s, "dynamo_after_first_run": _counters()}
                save()
                print(f"[compile] {name}: first (compiling) run {first_s:.0f}s", flush=True)
                row = run_ksampler(m, latent, conds, clock, cap, steps=STEPS, hook=False)
                row["first_run_s"] = first_s
                row["dynamo"] = _counters()
            else:
                row = run_ksampler(m, latent, conds, clock, cap, steps=STEPS, hook=False)
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
                    if k in ("later_steps_median_ms", "first_run_s", "error", "skipped")
                }
            ),
            flush=True,
        )
        save()
    for how in ("compiled", "compiled_blocks"):
        for kind in ("unpruned", "tape0.5"):
            e, c = out.get(f"eager_{kind}", {}), out.get(f"{how}_{kind}", {})
            if "later_steps_median_ms" in e and "later_steps_median_ms" in c:
                out[f"gain_{how}_{kind}"] = e["later_steps_median_ms"] / c["later_steps_median_ms"]
    return out
