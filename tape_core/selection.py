"""Per-frame token selection: the same number of tokens kept in every frame, so shapes are static per step."""

import torch


def keep_count(ratio: float, tokens_per_frame: int) -> int:
    """k = round(ratio * N), at least 1 and at most N."""
    return max(1, min(tokens_per_frame, int(round(ratio * tokens_per_frame))))


def select_per_frame(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest-scoring tokens of each frame.

    scores: [B, F, N] (frame-major video tokens, N = H*W per frame).
    Returns kept [B, F*k] int64: indices into the F*N video tokens, sorted, exactly k per frame, frame-major.
    """
    b, f, n = scores.shape
    if k >= n:
        return torch.arange(f * n, device=scores.device).expand(b, -1).contiguous()
    idx = torch.topk(scores, k, dim=-1, sorted=False).indices.sort(dim=-1).values  # [B, F, k]
    offsets = torch.arange(f, device=scores.device).mul_(n).view(1, f, 1)
    return (idx + offsets).reshape(b, f * k)


def selection_jitter(kept: torch.Tensor, frames: int, tokens_per_frame: int) -> torch.Tensor:
    """Share of kept spatial positions that change between adjacent frames. kept [B, F*k] -> [B] in [0, 1]."""
    b = kept.shape[0]
    mask = torch.zeros(b, frames * tokens_per_frame, dtype=torch.bool, device=kept.device)
    mask.scatter_(1, kept, True)
    mask = mask.view(b, frames, tokens_per_frame)
    if frames < 2:
        return torch.zeros(b, device=kept.device)
    changed = (mask[:, 1:] & ~mask[:, :-1]).sum(dim=(1, 2)).float()
    kept_per_frame = mask[:, 0].sum(dim=1).float().clamp(min=1)
    return changed / (kept_per_frame * (frames - 1))
