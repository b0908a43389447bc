"""The benchmark's rows: how each model variant is built, through the nodes a user would wire."""

from __future__ import annotations

from dataclasses import replace

KEEP_RATIOS = (0.75, 0.5, 0.4, 0.3)


def constant_schedule():
    """Constant keep ratio after the one dense warm-up step the node's default schedule also has (reuse mode
    needs one dense step to fill its cache)."""
    from comfyui_tape.tape_core import BudgetSchedule

    return BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1)


def tape(model, keep=0.5, schedule=None, **kw):
    """TAPE with the node's defaults (TapeConfig's) except what is given (schedule None = the default schedule).
    Results in research/bench/results from before 0.2 pinned pruned_mode 'reuse' with the per-span bf16 cache of that
    time; the old default of 0.1 is `old_default()`."""
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.tape_core import BudgetSchedule, TapeConfig

    return apply_tape(model, TapeConfig(keep_ratio=keep, schedule=schedule or BudgetSchedule(), **kw))


def old_default() -> dict:
    """The node defaults of 0.1 (TapeConfig overrides), as the fidelity tables define them."""
    from comfyui_tape.research.testbed.fidelity import OLD_DEFAULT

    return dict(OLD_DEFAULT)


def easycache(model, threshold=0.2):
    """ComfyUI's EasyCache node at its defaults (threshold 0.2, 15%-95%)."""
    from comfy_extras.nodes_easycache import EasyCacheNode

    return EasyCacheNode.execute(model, threshold, 0.15, 0.95, False).result[0]


# name -> (ReselectPolicy changes, BudgetSchedule changes) of the default, for `gpu_speed --probe-variants`
PROBE_VARIANTS = {
    "fast_start": ({"dense_first": 0}, {"warmup_keep": 0.75}),
    "block0_pruned": ({"dense_first": 0}, {}),
    "light_warmup": ({}, {"warmup_keep": 0.75}),
}


def probe_variants(names: str | None) -> list[tuple[str, dict, dict]]:
    """[(name, TapeConfig overrides, schedule changes)] of a comma list of PROBE_VARIANTS names."""
    from comfyui_tape.tape_core import ReselectPolicy

    out = []
    for n in filter(None, (names or "").split(",")):
        reselect, sched = PROBE_VARIANTS[n]
        out.append((n, {"reselect": replace(ReselectPolicy(), **reselect)}, sched))
    return out


def sampling_rows(base) -> list[tuple[str, object]]:
    """(name, ModelPatcher) in run order. Each is built from the probed base clone."""
    rows = [("unpruned", base)]
    for r in KEEP_RATIOS:
        rows.append((f"tape_keep{r}", tape(base, r, constant_schedule())))
    rows.append(("tape_default", tape(base)))
    rows.append(("tape_default_cpucache", tape(base, cache_device="cpu")))
    rows.append(("tape_default_bf16cache", tape(base, cache_format="bf16")))
    rows.append(("tape_default_skip", tape(base, pruned_mode="skip")))
    rows.append(("tape_old_default", tape(base, **old_default())))
    rows.append(("easycache", easycache(base)))
    rows.append(("tape_default+easycache", easycache(tape(base))))
    # random weights make EasyCache's skip decisions arbitrary; a higher threshold makes it skip, so the skip path
    # and its interplay with TAPE are at least exercised and timed
    rows.append(("easycache_t1.0", easycache(base, 1.0)))
    rows.append(("tape_default+easycache_t1.0", easycache(tape(base), 1.0)))
    return rows


def probe_schedule(steps: int):
    """A 'custom' schedule whose first pruned steps hit the probe keep ratios exactly (resampling is exact when the
    list has one entry per pruned step), after the default schedule's warm-up. Returns (schedule, {step: keep}) for
    the steps worth evaluating."""
    from comfyui_tape.tape_core import BudgetSchedule

    points = (0.75, 0.75, 0.7, 0.6, 0.5, 0.5, 0.4, 0.4, 0.3, 0.3)
    first = BudgetSchedule().warmup_steps
    ratios = points + (0.5,) * (steps - first - len(points))
    # the default schedule's warm-up (step count and keep) with the probe's ratios after it
    sched = replace(BudgetSchedule(), preset="custom", spread=0.0, custom=ratios)
    return sched, {i + first: r for i, r in enumerate(points)}
