"""End-to-end times COMPOSED from measured per-step times (used where a full run would not fit the time budget:
a 30-step 14B 720p run takes ~12 minutes dense).

A step's cost depends only on its keep ratio (same plan, same shapes, reuse cache present), so a run's time is the
first step (dense; it also fills the reuse cache and pays the sampler's start-up) plus the sum over the other
steps of t(keep ratio of that step). t(r) is interpolated piecewise-linearly between measured keep ratios.
The 1.3B run checks this against fully measured runs (see `validate`).
"""

from __future__ import annotations

import statistics


def curve(points: dict[float, float]):
    """Piecewise-linear t(r) through {keep ratio: ms}; linear extrapolation from the nearest segment."""
    xs = sorted(points)
    if len(xs) == 1:
        return lambda r: points[xs[0]]

    def t(r: float) -> float:
        i = 1
        while i < len(xs) - 1 and r > xs[i]:
            i += 1
        x0, x1 = xs[i - 1], xs[i]
        return points[x0] + (points[x1] - points[x0]) * (r - x0) / (x1 - x0)

    return t


def step_points(steps: list[dict], keep_of_step: dict[int, float]) -> dict[float, float]:
    """Median ms per keep ratio from a probe run's steps."""
    by_keep: dict[float, list[float]] = {}
    for s in steps:
        r = keep_of_step.get(s["step"])
        if r is not None:
            by_keep.setdefault(r, []).append(s["ms"])
    return {r: statistics.median(v) for r, v in by_keep.items()}


def compose_ms(first_ms: float, ratios: list[float], t_keep, t_dense: float, skipped=(), t_skip=0.0) -> float:
    """first step + sum over later steps; steps in `skipped` cost t_skip (EasyCache reuse), ratio 1.0 = dense."""
    total = first_ms
    for i, r in enumerate(ratios[1:], start=1):
        if i in skipped:
            total += t_skip
        else:
            total += t_dense if r >= 1.0 else t_keep(r)
    return total


def compose_rows(
    steps_n: int, dense: dict, probe: dict, keep_of_step: dict, schedule_ratios: dict, easy: dict | None
) -> dict:
    """dense: steps of the unpruned probe run; probe: steps of the TAPE probe run. Returns {row: ms}."""
    d_steps = [s["ms"] for s in dense["steps"]]
    t_dense = statistics.median(d_steps[1:])
    dense_first = d_steps[0]
    p_steps = probe["steps"]
    tape_first = p_steps[0]["ms"]
    t_keep = curve(step_points(p_steps[1:], keep_of_step))
    out = {"unpruned": compose_ms(dense_first, [1.0] * steps_n, t_keep, t_dense)}
    for name, ratios in schedule_ratios.items():
        out[name] = compose_ms(tape_first, ratios, t_keep, t_dense)
    if easy:
        skipped, t_skip = set(easy["skipped_steps"]), easy["skip_ms"]
        out["easycache"] = compose_ms(dense_first, [1.0] * steps_n, t_keep, t_dense, skipped, t_skip)
        out["tape_default+easycache"] = compose_ms(
            tape_first, schedule_ratios["tape_default"], t_keep, t_dense, skipped, t_skip
        )
    out["_t_dense_ms"] = t_dense
    out["_t_keep_points"] = step_points(p_steps[1:], keep_of_step)
    return out


def easycache_pattern(row: dict) -> dict:
    """Skipped step indices and the median cost of a skipped step, from a measured EasyCache run."""
    skipped = [s for s in row["steps"] if s["executed"] == 0]
    return {
        "skipped_steps": [s["step"] for s in skipped],
        "skip_ms": statistics.median([s["ms"] for s in skipped]) if skipped else 0.0,
    }


def validate(composed: dict, measured_rows: dict) -> dict:
    """Composed / measured end-to-end per row (1.3B, where both exist)."""
    out = {}
    for name, ms in composed.items():
        if name.startswith("_") or name not in measured_rows:
            continue
        out[name] = ms / (measured_rows[name]["wall_s"] * 1e3)
    return out


def skip_projection(
    steps_n: int,
    dense: dict,
    probe: dict,
    keep_of_step: dict,
    default_ratios: list[float],
    easy: dict | None,
    counts=(0, 5, 8, 10, 12, 14, 16),
) -> dict:
    """Speed-ups of EasyCache alone and TAPE (default schedule) + EasyCache if EasyCache skipped n of the steps,
    spread evenly over its 15%-95% window, each skipped step costing the measured skip time. With random weights
    the skip count itself cannot be measured, so this says how many skips a target needs."""
    d_steps = [s["ms"] for s in dense["steps"]]
    t_dense, dense_first = statistics.median(d_steps[1:]), d_steps[0]
    t_keep = curve(step_points(probe["steps"][1:], keep_of_step))
    tape_first = probe["steps"][0]["ms"]
    t_skip = easy["skip_ms"] if easy and easy["skipped_steps"] else 0.0
    lo, hi = int(0.15 * steps_n) + 1, int(0.95 * steps_n) - 1
    window = list(range(lo, hi + 1))
    base = compose_ms(dense_first, [1.0] * steps_n, t_keep, t_dense)
    out = {"t_skip_ms": t_skip, "window": [lo, hi], "by_skips": {}}
    for n in counts:
        n = min(n, len(window))
        skipped = {window[round(i * (len(window) - 1) / max(1, n - 1))] for i in range(n)} if n else set()
        e = compose_ms(dense_first, [1.0] * steps_n, t_keep, t_dense, skipped, t_skip)
        st = compose_ms(tape_first, default_ratios, t_keep, t_dense, skipped, t_skip)
        out["by_skips"][n] = {"easycache": base / e, "tape+easycache": base / st}
    return out
