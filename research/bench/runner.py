"""One resolution of one model: block-level numbers, sampling rows, probe runs, composition, compile check.

Each section is guarded: a failure is recorded in the JSON and the next section still runs, and the JSON is
rewritten after every section, so a run that runs out of time still leaves what it measured.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import torch

from . import rows
from .blocks import BlockBench, new_shape_cost
from .compile_check import compile_check
from .compose import compose_rows, easycache_pattern, skip_projection, validate
from .sampling import probed_base, run_ksampler, run_steps
from .wan_build import RESOLUTIONS, empty_latent, text_conds


@dataclass
class Ctx:
    sec: dict
    model: object
    res: str
    args: object
    clock: object
    cap: object
    time_left: object
    save: object
    compile_here: bool = False
    easy_src: dict | None = None
    latent: object = None
    conds: object = None
    base: object = None
    extra: dict = field(default_factory=dict)

    def free(self):
        if self.clock.cuda:
            torch.cuda.empty_cache()


def run_resolution(sec: dict, model, res: str, a, clock, cap, time_left, save, compile_here=False, easy_src=None):
    c = Ctx(sec, model, res, a, clock, cap, time_left, save, compile_here, easy_src)
    c.latent, c.conds, c.base = empty_latent(res), text_conds(), probed_base(model)
    sec.setdefault("rows", {})
    for name, fn in (
        ("blocks", _blocks),
        ("shapes", _shapes),
        ("rows", _rows),
        ("probes", _probes),
        ("repeat", _repeat),
        ("compile", _compile),
    ):
        try:
            fn(c)
        except Exception as e:  # keep what the other sections measure; the error goes into the results
            traceback.print_exc()
            sec.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"[:3000]
        save()
        c.free()


def _blocks(c: Ctx):
    if "blocks" not in c.args.sections:
        return
    bb = BlockBench(rows.tape(c.base), RESOLUTIONS[c.res], c.clock)
    c.sec["blocks"] = bb.speedups()
    speed = [
        f"r={r}: x{v['speedup_tape']:.2f} (bare x{v['speedup_bare']:.2f}, naive x{v['speedup_naive']:.2f})"
        for r, v in c.sec["blocks"]["keeps"].items()
    ]
    print(f"[blocks] {c.res}: " + ", ".join(speed), flush=True)
    c.save()
    c.sec["overheads"] = bb.overheads()
    print(f"[overheads] {c.res}: {c.sec['overheads']}", flush=True)
    c.save()
    c.sec["syncs"] = bb.sync_check()
    print(f"[syncs] {c.res}: {len(c.sec['syncs'])} synchronising calls on TAPE's block path", flush=True)


def _shapes(c: Ctx):
    from .proposals import proposals

    if "shapes" in c.args.sections:
        bb = BlockBench(rows.tape(c.base), RESOLUTIONS[c.res], c.clock)
        c.sec["new_shape_cost"] = new_shape_cost(bb)
        print(f"[shapes] {c.res}: {c.sec['new_shape_cost']}", flush=True)
        c.save()
        c.sec["proposals"] = proposals(bb)
        print(f"[proposals] {c.res}: {c.sec['proposals']}", flush=True)


def _rows(c: Ctx):
    if c.args.mode != "full" or "rows" not in c.args.sections:
        return
    run_ksampler(c.base, c.latent, c.conds, c.clock, c.cap, steps=2)  # warm-up: load, first kernels
    run_ksampler(rows.tape(c.base), c.latent, c.conds, c.clock, c.cap, steps=3)
    need = 120.0
    only = set(c.args.rows.split(",")) if c.args.rows else None
    for name, m in rows.sampling_rows(c.base):
        if only is not None and name not in only:
            continue
        if c.time_left() < need:
            c.sec["rows"][name] = {"skipped": "not enough time left in the --budget-s budget"}
            continue
        row = run_ksampler(m, c.latent, c.conds, c.clock, c.cap, steps=c.args.steps)
        c.sec["rows"][name] = row
        if name == "unpruned":
            need = max(need, 1.2 * row["wall_s"] + 20)
        print(_line(name, row), flush=True)
        c.save()
        c.free()


def _probes(c: Ctx):
    """Per-step probes: a dense run and one TAPE run whose custom schedule visits each probe keep ratio."""
    from dataclasses import replace

    from comfyui_tape.tape_core import BudgetSchedule

    if "probes" not in c.args.sections:
        return
    steps, sec = c.args.steps, c.sec
    sec["probe_dense"] = run_steps(c.base, c.latent, c.conds, c.clock, c.cap, [0, 1, 2], steps=steps)
    print(_line("probe_dense", sec["probe_dense"]), flush=True)
    sched, keep_of_step = rows.probe_schedule(steps)
    sec["probe_tape"] = run_steps(
        rows.tape(c.base, 0.5, sched), c.latent, c.conds, c.clock, c.cap, [0, *sorted(keep_of_step)], steps=steps
    )
    sec["probe_keep_of_step"] = keep_of_step
    print(_line("probe_tape", sec["probe_tape"]), flush=True)
    ratios = {f"tape_keep{r}": [1.0] + [r] * (steps - 1) for r in rows.KEEP_RATIOS}
    ratios["tape_default"] = BudgetSchedule().ratios(steps, 0.5)
    for name, overrides, sched_changes in rows.probe_variants(c.args.probe_variants):  # the default, changed
        probe = run_steps(
            rows.tape(c.base, 0.5, replace(sched, **sched_changes), **overrides), c.latent, c.conds, c.clock, c.cap,
            [0, *sorted(keep_of_step)], steps=steps,
        )  # fmt: skip
        sec[f"probe_{name}"] = probe
        print(_line(f"probe_{name}", probe), flush=True)
        own = replace(BudgetSchedule(), **sched_changes).ratios(steps, 0.5)
        composed = compose_rows(steps, sec["probe_dense"], probe, keep_of_step, {name: own}, None)
        sec.setdefault("composed_variants_ms", {})[name] = composed
        print(f"[compose] {name}: {composed['unpruned'] / composed[name]:.3f}x", flush=True)
        c.save()
    src_rows = sec["rows"] if "easycache" in sec["rows"] else _first_rows(c.easy_src)
    easy = _pattern(src_rows, "easycache")
    skip_src = _pattern(src_rows, "easycache_t1.0") or easy
    sec["easycache_pattern"] = easy
    sec["composed_ms"] = compose_rows(steps, sec["probe_dense"], sec["probe_tape"], keep_of_step, ratios, easy)
    cm = sec["composed_ms"]
    print(f"[compose] tape_default: {cm['unpruned'] / cm['tape_default']:.3f}x", flush=True)
    sec["easycache_projection"] = skip_projection(
        steps, sec["probe_dense"], sec["probe_tape"], keep_of_step, ratios["tape_default"], skip_src
    )
    if any("wall_s" in r for r in sec["rows"].values()):
        sec["composition_check"] = validate(sec["composed_ms"], sec["rows"])
        print(f"[compose] composed/measured: {sec['composition_check']}", flush=True)


def _repeat(c: Ctx):
    unpruned_s = c.sec["rows"].get("unpruned", {}).get("wall_s")
    if "repeat" in c.args.sections and unpruned_s and c.time_left() > 1.3 * unpruned_s + 10:
        row = run_ksampler(c.base, c.latent, c.conds, c.clock, c.cap, steps=c.args.steps)
        c.sec["rows"]["unpruned_repeat"] = row
        print(_line("unpruned_repeat", row), flush=True)


def _compile(c: Ctx):
    if c.compile_here:
        backend = c.args.compile_backend or ("inductor" if c.clock.cuda else "aot_eager")
        c.sec["compile"] = {}
        compile_check(c.model, c.latent, c.conds, c.clock, c.cap, backend, c.time_left, c.sec["compile"], c.save)


def _first_rows(results: dict | None) -> dict:
    return next(iter(results["resolutions"].values())).get("rows", {}) if results else {}


def _pattern(rows_: dict, name: str) -> dict | None:
    """Measured EasyCache skip pattern of a row, if that row ran."""
    return easycache_pattern(rows_[name]) if "steps" in rows_.get(name, {}) else None


def _line(name: str, row: dict) -> str:
    steps = [s["ms"] for s in row.get("steps", [])[1:]]
    med = sorted(steps)[len(steps) // 2] if steps else float("nan")
    extra = f" skipped={row['easycache_skipped']}" if "easycache_skipped" in row else ""
    return (
        f"[row] {name}: {row['wall_s']:.2f}s, later-step median {med:.1f}ms, "
        f"peak {row.get('peak_gb', 0):.2f}GB, cache {row['reuse_cache_gb']:.2f}GB, batches {row['batches']}"
        f"{extra}"
    )
