"""TAPE core: plain PyTorch, no ComfyUI imports.

Scoring, temporal smoothing, per-frame selection, gather/scatter, budget schedules and the block plan.
Everything here works on plain tensors and Python values so it can be tested and reused outside ComfyUI.
"""

from .cache import ResidualCache
from .config import TapeConfig
from .gather import add_rows, gather_rows, row_index, scatter_rows
from .plan import BlockPlan, BlockRole, ReselectPolicy
from .schedule import SCHEDULE_PRESETS, BudgetSchedule
from .scoring import SCORE_METHODS, score_attention_received, score_key_norm, score_random
from .selection import keep_count, nearest_kept, rotation_priority, select_per_frame, selection_jitter
from .smoothing import smooth_over_frames, smoothing_matrix

__all__ = [
    "SCHEDULE_PRESETS",
    "SCORE_METHODS",
    "BlockPlan",
    "BlockRole",
    "BudgetSchedule",
    "ReselectPolicy",
    "ResidualCache",
    "TapeConfig",
    "add_rows",
    "gather_rows",
    "keep_count",
    "nearest_kept",
    "rotation_priority",
    "row_index",
    "scatter_rows",
    "score_attention_received",
    "score_key_norm",
    "score_random",
    "select_per_frame",
    "selection_jitter",
    "smooth_over_frames",
    "smoothing_matrix",
]
