"""TapeConfig: everything one TAPE patch needs, as plain immutable values (safe to deep-copy with model_options)."""

from dataclasses import dataclass, field

from .cache import CACHE_FORMATS
from .plan import ReselectPolicy
from .schedule import BudgetSchedule
from .scoring import SCORE_METHODS

PRUNED_MODES = ("reuse", "nearest", "skip")
CACHE_DEVICES = ("gpu", "cpu")
CACHE_SLOTS = ("span", "block")


@dataclass(frozen=True)
class TapeConfig:
    """keep_ratio: base share of each frame's tokens kept in pruned blocks, (0, 1].
    smoothing: a in s~[f] = a s[f] + (1-a) s~[f-1]; 1 disables temporal smoothing.
    pruned_mode: 'reuse' (a pruned token gets the residual its blocks computed for it the last time it was kept),
    'nearest' (the update its block computed for the nearest kept token of the same frame, as ToMe's unmerge copies
    a merged token's output) or 'skip' (a pruned token passes its blocks unchanged).
    start_percent / end_percent: sampling range in which TAPE acts (ComfyUI's percent_to_sigma convention).
    score: random (default: a fresh uniform draw per token and step, best measured with reuse; smoothing and rotation
    do not apply to it) | attention (the paper's: attention received, smoothed across frames, ranked with rotation) |
    key_norm. score_samples: query tokens sampled for attention scoring.
    rotation: priority a token gains per step it goes uncomputed, in units of its per-frame importance rank
    (0 = the paper's pure ranking). Ranking alone prunes the same tokens step after step, so their reused updates
    go stale; rotation brings every token back within about 1 / rotation + 1 / keep steps.
    blend: reuse mode: share of the nearest kept token's fresh update mixed into a pruned token's own cached one
    (1 - blend of the cached update + blend of the neighbour's): the cache brings the token's own content, the
    neighbour what changed since the cache was written.
    cache_slots: 'span' (one cached residual per reselection span) or 'block' (one per pruned block).
    cache_format: 'fp8' (1 byte per value + a scale per token) or 'bf16'.
    cache_device: where the reuse cache lives ('cpu' keeps it off the GPU at the cost of PCIe copies).
    seed: seeds the 'random' score method.
    keep_ratio 1 turns TAPE off, except with a 'custom' schedule, whose ratios are absolute.
    """

    keep_ratio: float = 0.5
    smoothing: float = 0.5
    pruned_mode: str = "reuse"
    start_percent: float = 0.0
    end_percent: float = 1.0
    schedule: BudgetSchedule = field(default_factory=BudgetSchedule)
    reselect: ReselectPolicy = field(default_factory=ReselectPolicy)
    score: str = "random"
    score_samples: int = 128
    rotation: float = 1.0
    blend: float = 0.3
    cache_slots: str = "span"
    cache_format: str = "fp8"
    cache_device: str = "gpu"
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ValueError(f"keep_ratio must be in (0, 1], got {self.keep_ratio}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1] (1 = off), got {self.smoothing}")
        if self.pruned_mode not in PRUNED_MODES:
            raise ValueError(f"pruned_mode must be one of {PRUNED_MODES}, got '{self.pruned_mode}'")
        for name in ("start_percent", "end_percent"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.start_percent > self.end_percent:
            raise ValueError(
                f"start_percent ({self.start_percent}) must not be greater than end_percent ({self.end_percent})"
            )
        if self.score not in SCORE_METHODS:
            raise ValueError(f"score must be one of {SCORE_METHODS}, got '{self.score}'")
        if self.score_samples < 1:
            raise ValueError(f"score_samples must be >= 1, got {self.score_samples}")
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {self.blend}")
        if not 0.0 <= self.rotation <= 100.0:
            raise ValueError(f"rotation must be in [0, 100], got {self.rotation}")
        if self.cache_slots not in CACHE_SLOTS:
            raise ValueError(f"cache_slots must be one of {CACHE_SLOTS}, got '{self.cache_slots}'")
        if self.cache_format not in CACHE_FORMATS:
            raise ValueError(f"cache_format must be one of {CACHE_FORMATS}, got '{self.cache_format}'")
        if self.cache_device not in CACHE_DEVICES:
            raise ValueError(f"cache_device must be one of {CACHE_DEVICES}, got '{self.cache_device}'")

    @property
    def is_noop(self) -> bool:
        """True when no step can ever prune: the patch node then returns an unpatched clone."""
        if self.start_percent >= self.end_percent:
            return True
        if self.schedule.preset == "custom":
            return all(r >= 1.0 for r in self.schedule.custom)
        return self.keep_ratio >= 1.0  # keep 1 means off, whatever the schedule's spread
