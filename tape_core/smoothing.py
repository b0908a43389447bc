"""Temporal smoothing of token importance across adjacent frames (TAPE part 1).

s~[0] = s[0];  s~[f] = a * s[f] + (1 - a) * s~[f-1].  a = 1 turns smoothing off; the paper uses a = 0.5.
The recursion is unrolled into one lower-triangular [F, F] matrix so it is a single batched matmul
(no Python loop over frames, no data-dependent shapes).
"""

import torch


def smoothing_matrix(frames: int, alpha: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """W [F, F] with s~ = W @ s: W[f, g] = a (1-a)^(f-g) for 1 <= g <= f, W[f, 0] = (1-a)^f.
    Built directly on `device` (no host tensor to copy over, so no synchronisation on the block path)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
    f = torch.arange(frames, device=device, dtype=torch.float32)
    lag = f[:, None] - f[None, :]
    decay = torch.full((), 1.0 - alpha, device=device, dtype=torch.float32)
    w = torch.where(lag >= 0, alpha * decay ** lag.clamp(min=0), 0.0)
    w[:, 0] = decay**f
    return w.to(dtype)


def smooth_over_frames(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """scores [B, F, N] (N tokens per frame) -> smoothed [B, F, N], same dtype."""
    if alpha >= 1.0:
        return scores
    w = smoothing_matrix(scores.shape[1], alpha, device=scores.device, dtype=torch.float32)
    return torch.einsum("fg,bgn->bfn", w, scores.float()).to(scores.dtype)
