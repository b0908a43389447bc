"""Timestep-level budget schedule (TAPE part 3): prune hard in the early noisy steps, relax while refining.

keep_ratio(step, steps, base) gives the share of each frame's tokens kept at a sampling step. The presets are
built around the base keep ratio and are mean-preserving (before clipping to [MIN_KEEP, 1]), so a schedule
and a constant budget with the same base cost about the same.
"""

import math
from dataclasses import dataclass, field

MIN_KEEP = 0.05
# Keep ratios are rounded to this grid: each distinct token count costs a first-call warm-up (kernel selection),
# so a schedule should produce few of them (measured: BENCHMARKS.md; under per-block torch.compile the first
# change of count recompiles once to a dynamic-shape graph, measured 2 recompiles for the default's 7 counts).
KEEP_QUANTUM = 0.05
SCHEDULE_PRESETS = ("constant", "linear", "cosine", "step", "custom")


def parse_ratio_list(text: str) -> tuple[float, ...]:
    """'0.3, 0.4 0.5' -> (0.3, 0.4, 0.5); raises ValueError naming the bad entry."""
    values = []
    for item in text.replace(",", " ").split():
        try:
            v = float(item)
        except ValueError:
            raise ValueError(f"custom_ratios: '{item}' is not a number") from None
        if not 0.0 < v <= 1.0:
            raise ValueError(f"custom_ratios: {v} is outside the allowed range (0, 1]")
        values.append(v)
    return tuple(values)


@dataclass(frozen=True)
class BudgetSchedule:
    """Keep ratio per sampling step.

    preset: constant | linear | cosine | step | custom.
    spread: how far the early budget sits below the base (and the late budget above it).
    warmup_steps: steps at the start that run at warmup_keep (1, the default: dense, which fills the reuse cache for
    every token) before the schedule begins.
    resume_keep: the warm-up's keep ratio instead when the run resumes a partly denoised latent (the second sampler of
    a two-stage graph, or denoise < 1): there a dense step is a large share of a short run, so it prunes lightly
    (in reuse mode its pruned tokens take their nearest kept token's update). 1 = dense.
    dense_last_steps: unpruned steps at the end.
    custom: per-step keep ratios; resampled linearly over progress when the step count differs.
    Ratios are rounded to multiples of KEEP_QUANTUM (0.05).
    """

    preset: str = "linear"
    spread: float = 0.2
    warmup_steps: int = 1
    dense_last_steps: int = 0
    custom: tuple[float, ...] = field(default_factory=tuple)
    warmup_keep: float = 1.0
    resume_keep: float = 0.75

    def __post_init__(self):
        if self.preset not in SCHEDULE_PRESETS:
            raise ValueError(f"preset must be one of {SCHEDULE_PRESETS}, got '{self.preset}'")
        if not 0.0 <= self.spread <= 0.5:
            raise ValueError(f"spread must be in [0, 0.5], got {self.spread}")
        if self.warmup_steps < 0 or self.dense_last_steps < 0:
            raise ValueError("warmup_steps and dense_last_steps must be >= 0")
        for name in ("warmup_keep", "resume_keep"):
            if not MIN_KEEP <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [{MIN_KEEP}, 1], got {getattr(self, name)}")
        if self.preset == "custom" and not self.custom:
            raise ValueError("custom_ratios: the 'custom' preset needs at least one keep ratio")

    def shape(self, progress: float) -> float:
        """Offset in [-1, 1] at progress in [0, 1]: -1 = hardest pruning (early), +1 = most relaxed (late)."""
        if self.preset == "linear":
            return 2.0 * progress - 1.0
        if self.preset == "cosine":
            return -math.cos(math.pi * progress)
        if self.preset == "step":
            return -1.0 if progress < 0.5 else 1.0
        return 0.0

    def keep_ratio(self, step: int, steps: int, base: float, resumed: bool = False) -> float:
        """Keep ratio in [MIN_KEEP, 1] for 0-based step of steps; 1.0 means the step runs dense.
        resumed: the run starts from a partly denoised latent (its warm-up steps keep resume_keep)."""
        if steps <= 0:
            return 1.0
        step = min(max(step, 0), steps - 1)
        if step >= steps - self.dense_last_steps:
            return 1.0
        if step < self.warmup_steps:
            return _on_grid(self.resume_keep if resumed else self.warmup_keep)
        # progress over the pruned steps only, so the mean over them stays at base
        first, last = self.warmup_steps, steps - self.dense_last_steps - 1
        progress = 0.5 if last <= first else (step - first) / (last - first)  # one pruned step: the base ratio
        if self.preset == "custom":
            pos = progress * (len(self.custom) - 1)
            lo = int(math.floor(pos))
            hi = min(lo + 1, len(self.custom) - 1)
            r = self.custom[lo] + (self.custom[hi] - self.custom[lo]) * (pos - lo)
        else:
            r = base + self.spread * self.shape(progress)
        return _on_grid(r)

    def ratios(self, steps: int, base: float, resumed: bool = False) -> list[float]:
        return [self.keep_ratio(i, steps, base, resumed) for i in range(steps)]


def _on_grid(r: float) -> float:
    return min(1.0, max(MIN_KEEP, round(round(r / KEEP_QUANTUM) * KEEP_QUANTUM, 6)))


CONSTANT = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=0)
