"""Prototypes of the fixes proposed to the core, timed against the core's current code on the same inputs.

Nothing here is used by the pack: these only put numbers on the proposals in BENCHMARKS.md.
"""

from __future__ import annotations

import torch

from .env import time_fn


def score_fused(q, k, heads: int, n_samples: int = 128, chunk_elements: int = 2**25) -> torch.Tensor:
    """Same result as tape_core.scoring.score_attention_received, fewer passes over the logits: the 1/sqrt(d)
    scale is folded into the sampled queries (S x D, tiny) and softmax writes fp32 straight from the half logits,
    instead of .float() copy -> scale copy -> softmax copy."""
    from comfyui_tape.tape_core.scoring import _as_bhld, query_sample_positions

    qh, kh = _as_bhld(q, heads, False), _as_bhld(k, heads, False)
    b, h, n, d = kh.shape
    pos = query_sample_positions(n, n_samples, device=q.device)
    qs = qh.index_select(2, pos) * d**-0.5
    s = qs.shape[2]
    h_chunk = max(1, min(h, chunk_elements // (b * n * s)))
    received = torch.zeros(b, n, device=q.device, dtype=torch.float32)
    for h0 in range(0, h, h_chunk):
        logits = torch.matmul(qs[:, h0 : h0 + h_chunk], kh[:, h0 : h0 + h_chunk].transpose(-1, -2))
        received += torch.softmax(logits, dim=-1, dtype=torch.float32).sum(dim=(1, 2))
    return received / h


def proposals(bb) -> dict:
    """bb: a BlockBench (real block, real sizes)."""
    from comfyui_tape.tape_core import score_attention_received

    out = {}
    heads = bb.dm.num_heads
    q, k = torch.randn_like(bb.x), torch.randn_like(bb.x)
    ref = score_attention_received(q, k, heads, 128)
    new = score_fused(q, k, heads, 128)
    out["score_current_ms"] = time_fn(lambda: score_attention_received(q, k, heads, 128), bb.clock)["median_ms"]
    out["score_fused_ms"] = time_fn(lambda: score_fused(q, k, heads, 128), bb.clock)["median_ms"]
    out["score_fused_rel_err"] = float((new - ref).norm() / ref.norm())
    call = bb.call_plan(0.5)
    scores = torch.rand(bb.batch, bb.seq, device=bb.x.device)
    out["select_ms"] = time_fn(lambda: bb.run.select(scores, call, 0), bb.clock)["median_ms"]
    # the same selection with the smoothing matrix built once on the device (what the fix would do)
    from comfyui_tape.tape_core import select_per_frame, selection_jitter
    from comfyui_tape.tape_core.smoothing import smoothing_matrix

    f, n = call.grid[0], call.tokens_per_frame
    w = smoothing_matrix(f, 0.5, device=bb.x.device)

    def select_cached_w():
        video = scores.float().reshape(len(call.chunks), call.videos, f, n).mean(dim=0)
        video = video / video.mean(dim=-1, keepdim=True).clamp(min=1e-12)
        video = torch.einsum("fg,bgn->bfn", w, video)
        kept = select_per_frame(video, call.k)
        bb.run.stats.add_jitter(selection_jitter(kept, f, n))
        return kept

    out["select_cached_w_ms"] = time_fn(select_cached_w, bb.clock)["median_ms"]
    return out
