"""Wan 2.1 / 2.2 (comfy.ldm.wan.model.WanModel): token layout and per-block argument pruning.

Tokens: Conv3d patch (1, 2, 2), frame-major (f, h, w); reference tokens (ref_conv) are PREPENDED and never
pruned. Block args: img [B, L, C], txt, vec (e0) [B, 1, 6, C] or per FRAME [B, F, 6, C] (Wan 2.2 with a noise
mask), pe [1, L, 1, d/2, 2, 2]. Wan blocks do not modify their input in place.
"""

from __future__ import annotations

import math

import torch

from ...tape_core import gather_rows
from .base import CallLayout, KeptRows
from .gather import gather_token_axis

# Subclasses add modules that need full-length tokens between blocks (VACE, camera, HuMo, S2V, Animate).
_REFUSED = {
    "VaceWanModel": "Wan VACE adds control features into the full token sequence between blocks",
    "CameraWanModel": "Wan Fun Camera adds camera features to the full token sequence",
    "HumoWanModel": "Wan HuMo appends audio/reference tokens and injects features between blocks",
    "WanModel_S2V": "Wan S2V appends reference tokens and adds audio features between blocks",
    "AnimateWanModel": "Wan Animate adds face-adapter features into the full token sequence between blocks",
}


def _wan_class():
    from comfy.ldm.wan.model import WanModel

    return WanModel


class WanAdapter:
    name = "Wan"
    blocks_mutate_input = False

    def __init__(self, n_blocks: int, dim: int, ffn_dim: int, patch_size: tuple[int, int, int], ref_conv: bool = False):
        self.blocks = tuple(("double_block", i) for i in range(n_blocks))
        self.dim = dim
        self.ffn_dim = ffn_dim
        self.patch_size = tuple(int(p) for p in patch_size)
        self.ref_conv = ref_conv

    @staticmethod
    def serves(diffusion_model) -> bool:
        return type(diffusion_model) is _wan_class()

    @staticmethod
    def refusal(diffusion_model) -> str | None:
        name = type(diffusion_model).__name__
        if name in _REFUSED:
            return f"model: TAPE does not support {name} yet: {_REFUSED[name]}, so pruned blocks would break it."
        return None

    @classmethod
    def from_model(cls, dm) -> WanAdapter:
        return cls(len(dm.blocks), dm.dim, dm.ffn_dim, dm.patch_size, getattr(dm, "ref_conv", None) is not None)

    # ---- per call -------------------------------------------------------------------------------------
    def layout(self, args: tuple, kwargs: dict) -> CallLayout:
        """WanModel.forward(x [B, C, T, H, W], timestep, context, clip_fea, time_dim_concat, transformer_options,
        **kwargs): grid (F, H, W) of x plus time_dim_concat frames (ComfyUI pads to the patch size, so odd sizes round
        up); the reference_latent's tokens (ref_conv) are prepended: the prefix."""
        x = args[0]
        pt, ph, pw = self.patch_size
        t, h, w = x.shape[2:]
        frames = math.ceil(t / pt)
        concat = args[4] if len(args) > 5 else kwargs.get("time_dim_concat")
        if torch.is_tensor(concat):
            frames += math.ceil(concat.shape[2] / pt)
        ref = kwargs.get("reference_latent") if self.ref_conv else None
        n_prefix = math.ceil(ref.shape[-2] / ph) * math.ceil(ref.shape[-1] / pw) if torch.is_tensor(ref) else 0
        return CallLayout((frames, math.ceil(h / ph), math.ceil(w / pw)), n_prefix)

    def attention_len(self, kind: str, args: dict) -> int:
        return args["img"].shape[1]

    def context_len(self, kind: str, args: dict) -> int:
        return args["txt"].shape[1] if torch.is_tensor(args.get("txt")) else 0

    def block_flops(self, kind: str, tokens: int, ctx_tokens: int) -> float:
        """Multiply-adds x2 of one WanAttentionBlock on `tokens` tokens (projections, attention, FFN)."""
        d, n = self.dim, tokens
        self_attn = 8 * n * d * d + 4 * n * n * d
        cross = 4 * n * d * d + 4 * ctx_tokens * d * d + 4 * n * ctx_tokens * d
        ffn = 4 * n * d * self.ffn_dim
        return float(self_attn + cross + ffn)

    # ---- per block ------------------------------------------------------------------------------------
    def prune_args(self, kind: str, args: dict, call, rows: KeptRows) -> dict:
        """Block args restricted to the kept rows. Rope rows and modulation are gathered once per span and call
        (they are the same for every block of the span)."""
        cache = call.span_cache(rows)
        pruned = dict(args)
        pruned["img"] = gather_rows(args["img"], rows.flat)
        if "pe" not in cache:
            cache["pe"] = gather_token_axis(args["pe"], rows.kept, call.batch)  # pe [1, L, ...]
        pruned["pe"] = cache["pe"]
        vec = args["vec"]
        if vec.ndim == 4 and vec.shape[1] > 1:
            if "vec" not in cache:
                cache["vec"] = self._gather_frame_vec(vec, rows, call, args["img"].shape[1])
            pruned["vec"] = cache["vec"]
        return pruned

    @staticmethod
    def _gather_frame_vec(vec: torch.Tensor, rows: KeptRows, call, seq_len: int) -> torch.Tensor:
        """Per-frame modulation vec [B, Fe, 6, C].

        The block maps frames to tokens with repeat_e (L // Fe tokens per frame). When the kept set has exactly
        k tokens per frame in frame order and no prefix, the same mapping on K tokens is still right, so vec
        passes unchanged (no memory). Otherwise expand to per-token through ComfyUI's own repeat_e, then
        gather: [B, K, 6, C] (repeat_e then maps 1:1).
        """
        if rows.frame_major and vec.shape[1] == call.grid[0] and seq_len == call.video_tokens:
            return vec
        from comfy.ldm.wan.model import repeat_e

        frames = torch.arange(vec.shape[1], device=vec.device).view(1, -1)
        frame_of_token = repeat_e(frames, torch.empty(1, seq_len, 0, device="meta"))[0]  # [L]
        bv, k = rows.kept.shape
        ids = frame_of_token.index_select(0, rows.kept.reshape(-1)).view(bv, k)
        ids = ids.index_select(0, torch.arange(vec.shape[0], device=vec.device) % bv)  # [B, K]
        return torch.gather(vec, 1, ids[:, :, None, None].expand(-1, -1, *vec.shape[2:]))
