"""Gathering per-token block arguments (rope tables, masks, per-token modulation) along their token axis."""

from __future__ import annotations

import torch

from ...tape_core import gather_rows, row_index


def gather_token_axis(t: torch.Tensor, kept: torch.Tensor, batch: int, dim: int = 1) -> torch.Tensor:
    """t [Bt, ..., L (at `dim`), ...] -> the same with L replaced by K = kept.shape[1].

    kept [Bv, K]: row indices per video. A batch dim of 1 is shared by every row (gathered once per video, then
    broadcast or repeated to `batch` rows); otherwise row r uses video r % Bv's indices (cond/uncond stacking).
    """
    t = t.movedim(dim, 1)
    bv, k = kept.shape
    if t.shape[0] == 1:
        rows = t[0].index_select(0, kept.reshape(-1)).view(bv, k, *t.shape[2:])
        if bv > 1:
            rows = rows.index_select(0, torch.arange(batch, device=kept.device) % bv)
    else:
        rows = gather_rows(t, row_index(kept, t.shape[0], t.shape[1]))
    return rows.movedim(1, dim).contiguous()
