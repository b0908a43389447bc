"""Token importance scores.

The paper ranks tokens by attention: a token matters if other tokens attend to it. We measure the attention
mass each token receives from a fixed, evenly spaced sample of query tokens, averaged over heads. The full
[L, L] map is never built: queries and heads are processed in chunks so memory stays O(samples x tokens).
"""

import torch

SCORE_METHODS = ("attention", "key_norm", "random")

# Upper bound on the fp32 logits materialised at once (elements). 2**25 floats = 128 MiB.
_CHUNK_ELEMENTS = 2**25


def _as_bhld(t: torch.Tensor, heads: int, skip_reshape: bool) -> torch.Tensor:
    """[B, L, H*D] (or [B, H, L, D] when skip_reshape) -> [B, H, L, D] view."""
    if skip_reshape:
        return t
    b, n, hd = t.shape
    return t.view(b, n, heads, hd // heads).transpose(1, 2)


def query_sample_positions(seq_len: int, n_samples: int, device=None) -> torch.Tensor:
    """Evenly spaced query positions [S], deterministic, covering every frame of a frame-major sequence."""
    n = max(1, min(int(n_samples), seq_len))
    return torch.linspace(0, seq_len - 1, n, device=device).round().long()


def score_attention_received(
    q: torch.Tensor, k: torch.Tensor, heads: int, n_samples: int = 128, skip_reshape: bool = False
) -> torch.Tensor:
    """Attention mass each key token receives from a sample of queries, mean over heads.

    q, k: [B, L, H*D] (or [B, H, L, D] with skip_reshape=True), as ComfyUI's attention functions receive them.
    Returns scores [B, L] in float32 (each sampled query's softmax row sums to 1, so scores sum to S).
    """
    qh, kh = _as_bhld(q, heads, skip_reshape), _as_bhld(k, heads, skip_reshape)
    b, h, n, d = kh.shape
    pos = query_sample_positions(qh.shape[2], n_samples, device=q.device)
    qs = qh.index_select(2, pos) * d**-0.5  # [B, H, S, D], scale folded in (no pass over the logits)
    s = qs.shape[2]
    per_row = b * n  # elements of one (head, query) row across the batch
    q_chunk = max(1, min(s, _CHUNK_ELEMENTS // per_row))
    h_chunk = max(1, min(h, _CHUNK_ELEMENTS // (per_row * q_chunk)))
    received = torch.zeros(b, n, device=q.device, dtype=torch.float32)
    for h0 in range(0, h, h_chunk):
        kc = kh[:, h0 : h0 + h_chunk]
        for s0 in range(0, s, q_chunk):
            logits = torch.matmul(qs[:, h0 : h0 + h_chunk, s0 : s0 + q_chunk], kc.transpose(-1, -2))
            received += torch.softmax(logits, dim=-1, dtype=torch.float32).sum(dim=(1, 2))  # [B, L]
    return received / h


def score_key_norm(k: torch.Tensor, heads: int, skip_reshape: bool = False) -> torch.Tensor:
    """Cheap proxy: L2 norm of each token's key, mean over heads. k as in score_attention_received. -> [B, L]."""
    return _as_bhld(k, heads, skip_reshape).float().norm(dim=-1).mean(dim=1)


def score_random(batch: int, seq_len: int, seed: int, device=None) -> torch.Tensor:
    """Uniform random scores [B, L] from a seeded generator: the control that any ranking must beat."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.rand(batch, seq_len, generator=gen).to(device)
