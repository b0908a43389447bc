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


def nearest_kept(kept: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """For every video token, the position in the kept list of the nearest kept token of the same frame.

    kept: [B, F*k] from select_per_frame (frame-major, k sorted tokens per frame).
    Returns [B, F*H*W] int64 in [0, F*k): kept tokens map to themselves. Frames are processed in chunks so the
    [H*W, k] distance tables stay small.
    """
    b, total = kept.shape
    k, n = total // frames, height * width
    dev = kept.device
    # int32 coordinates: squared distances stay below 2^31 for any frame under 32k x 32k tokens, and the [n, k]
    # tables move half the bytes of int64 (this runs once per selection, inside the first block's time)
    ys = (torch.arange(n, device=dev) // width).to(torch.int32)
    xs = (torch.arange(n, device=dev) % width).to(torch.int32)
    local = kept.view(b, frames, k) - torch.arange(frames, device=dev).view(1, frames, 1) * n  # [B, F, k]
    out = torch.empty(b, frames, n, dtype=torch.long, device=dev)
    chunk = max(1, 2**25 // max(1, b * n * k))
    for f0 in range(0, frames, chunk):
        loc = local[:, f0 : f0 + chunk]  # [B, c, k]
        dy = ys.view(1, 1, n, 1) - ys[loc].unsqueeze(2)
        dx = xs.view(1, 1, n, 1) - xs[loc].unsqueeze(2)
        nearest = (dy * dy + dx * dx).argmin(dim=-1)  # [B, c, n], ties -> the first kept token in raster order
        frame_base = torch.arange(f0, f0 + loc.shape[1], device=dev).view(1, -1, 1) * k
        out[:, f0 : f0 + loc.shape[1]] = nearest + frame_base
    return out.view(b, frames * n)


def frame_rank(scores: torch.Tensor) -> torch.Tensor:
    """scores [B, F, N] -> each token's rank within its frame, scaled to [0, 1] (1 = most important)."""
    n = scores.shape[-1]
    rank = scores.argsort(dim=-1).argsort(dim=-1).to(torch.float32)
    return rank / max(1, n - 1)


def rotation_priority(importance: torch.Tensor, age: torch.Tensor | None, rotation: float) -> torch.Tensor:
    """Priority for select_per_frame that makes the kept set rotate across steps.

    importance [B, F, N] (temporally smoothed); age [B, F, N] steps since each token was last computed (None: all 0);
    rotation: priority gained per step uncomputed, in units of the per-frame importance rank.
    rotation 0 is the paper's pure ranking (the same top-k as `importance`). With rotation > 0 every token is
    recomputed within about 1 / rotation + 1 / keep steps, the important ones first, so no token's cached update
    goes stale for long.
    """
    if rotation <= 0:
        return importance
    prio = frame_rank(importance)
    return prio if age is None else prio + rotation * age
