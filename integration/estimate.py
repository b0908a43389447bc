"""The estimate the editor shows before a run: the same cost model as each run's summary (the adapter's
block_flops summed over blocks and steps, RunStats), on a reference model and size, since the editor knows neither."""

from __future__ import annotations

from ..tape_core import BudgetSchedule, ReselectPolicy, keep_count
from .adapters.wan import WanAdapter

REFERENCE = "Wan 1.3B, 832x480x81"
_ADAPTER = WanAdapter(30, 1536, 8960, (1, 2, 2))
_GRID = (21, 30, 52)
_CTX = 512


def block_speedup(keep_ratio: float, schedule: BudgetSchedule, steps: int, reselect: ReselectPolicy | None = None):
    """(keep ratio per step, estimated speed-up of the transformer blocks over the run) on the reference model.
    Dense steps and the blocks that never prune count at full cost, as in the end-of-run summary."""
    plan = (reselect or ReselectPolicy()).plan(len(_ADAPTER.blocks), dense_scoring=False)  # the default score: random
    ratios = schedule.ratios(steps, keep_ratio)
    if schedule.preset != "custom" and keep_ratio >= 1.0:
        ratios = [1.0] * steps
    f, h, w = _GRID
    n = f * h * w
    dense_block = _ADAPTER.block_flops("double_block", n, _CTX)
    dense = run = 0.0
    for r in ratios:
        kept = f * keep_count(r, h * w) if r < 1.0 else n
        for role in plan.roles:
            dense += dense_block
            run += _ADAPTER.block_flops("double_block", kept, _CTX) if role.value == "prune" else dense_block
    return ratios, dense / max(run, 1e-9)
