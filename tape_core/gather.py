"""Gather/scatter of token rows.

Tokens are addressed as rows of x viewed as [B*L, C], so one index_select / index_copy_ moves each kept row
once, for any batch layout (per-video selections shared by cond and uncond rows). No masks, no .item().
"""

import torch

from .cache import row_chunks


def row_index(kept: torch.Tensor, batch: int, seq_len: int) -> torch.Tensor:
    """kept [Bv, K] token indices per video -> flat row index [batch*K] into a [batch*L, C] view.

    Row r of the batch uses video r % Bv's selection: ComfyUI stacks cond/uncond chunks of Bv rows each.
    """
    bv, k = kept.shape
    if batch % bv:
        raise ValueError(f"batch {batch} is not a multiple of the {bv} videos the selection was made for")
    rows = torch.arange(batch, device=kept.device)
    per_row = kept.index_select(0, rows % bv)  # [batch, K]
    return (per_row + rows[:, None] * seq_len).reshape(-1)


def gather_rows(x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """x [B, L, ...] -> [B, K, ...] with K = flat.numel() // B. A new tensor; x is untouched."""
    b, n = x.shape[:2]
    rows = x.reshape(b * n, *x.shape[2:]).index_select(0, flat)
    return rows.view(b, flat.numel() // b, *x.shape[2:])


def scatter_rows(x: torch.Tensor, flat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Write y [B, K, ...] into the kept rows of x [B, L, ...] IN PLACE and return x (made contiguous first)."""
    if not x.is_contiguous():
        x = x.contiguous()
    b, n = x.shape[:2]
    x.view(b * n, *x.shape[2:]).index_copy_(0, flat, y.reshape(-1, *x.shape[2:]).to(x.dtype))
    return x


def add_rows(x: torch.Tensor, src: torch.Tensor, index: torch.Tensor, alpha: float = 1.0) -> None:
    """x [B, L, C] (contiguous) += alpha * rows `index` [B*L] of src [B, K, C], IN PLACE, in pieces of CHUNK_ROWS rows
    (no full-size temporary)."""
    rows, src_rows = x.view(-1, x.shape[-1]), src.reshape(-1, src.shape[-1])
    for i, j in row_chunks(rows.shape[0]):
        rows[i:j].add_(src_rows.index_select(0, index[i:j]), alpha=alpha)
