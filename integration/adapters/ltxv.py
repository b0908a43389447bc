"""LTX-Video 0.9.x (comfy.ldm.lightricks.model.LTXVModel), 2B (28 blocks, 2048 wide) and 13B (48 blocks, 4096 wide).

Tokens: patch 1, one token per latent voxel, (f h w) order. Block args: img [B, L, C], txt (the prompt), vec
[B, 1, 6C] or per TOKEN [B, L, 6C] whenever a noise mask exists, pe = (cos, sin) each [B, L, C]. Blocks write
into `img` in place (x += ...).

Protected rows, never pruned and kept out of the temporal smoothing (they are not in the grid):
- guide frames that LTXVAddGuide appends at the end of the frame axis (`keyframe_idxs` [B, 3, n] re-positions the
  last n tokens): the suffix;
- conditioning frames (noise mask below 1: LTXVImgToVideo's first frame) seen as per-token timesteps below the
  step's: a leading run of such frames is the prefix. Conditioning frames anywhere else run the call dense (said
  once in the log), since a kept set with holes in the middle frames is not what the runtime builds.
"""

from __future__ import annotations

import torch

from ...tape_core import gather_rows
from .base import CallLayout, KeptRows
from .gather import gather_token_axis


def _ltxv_class():
    from comfy.ldm.lightricks.model import LTXVModel

    return LTXVModel


def _arg(args: tuple, kwargs: dict, i: int, name: str):
    return args[i] if len(args) > i else kwargs.get(name)


class LTXVAdapter:
    name = "LTX-Video"
    blocks_mutate_input = True

    def __init__(self, n_blocks: int, dim: int, patch_size: tuple[int, int, int] = (1, 1, 1)):
        self.blocks = tuple(("double_block", i) for i in range(n_blocks))
        self.dim = dim
        self.patch_size = tuple(int(p) for p in patch_size)

    @staticmethod
    def serves(diffusion_model) -> bool:
        dm = diffusion_model
        return type(dm) is _ltxv_class() and tuple(getattr(dm.patchifier, "patch_size", (1, 1, 1))) == (1, 1, 1)

    @staticmethod
    def refusal(diffusion_model) -> str | None:
        if type(diffusion_model).__name__ == "LTXVModel":
            return "model: TAPE supports LTX-Video with patch size 1 (0.9.x) only; this model patches differently."
        return None

    @classmethod
    def from_model(cls, dm) -> LTXVAdapter:
        return cls(len(dm.transformer_blocks), dm.inner_dim)

    # ---- per call -------------------------------------------------------------------------------------
    def layout(self, args: tuple, kwargs: dict) -> CallLayout:
        """forward(x [B, 128, F, H, W], timestep, context, attention_mask, frame_rate, transformer_options,
        keyframe_idxs) as the DIFFUSION_MODEL wrapper receives it. Reads which frames are conditioned from the
        per-token timesteps: one small host read per model call."""
        x = args[0]
        frames, h, w = x.shape[2:]
        per_frame = h * w
        guides = _arg(args, kwargs, 6, "keyframe_idxs")
        n_guide = guides.shape[2] if torch.is_tensor(guides) else 0
        if n_guide % per_frame:
            return CallLayout((0, 0, 0), 0, f"LTX-Video: {n_guide} guide tokens are not whole frames of {h}x{w}")
        frames -= n_guide // per_frame
        lead = 0
        t = _arg(args, kwargs, 1, "timestep")
        if torch.is_tensor(t) and t.numel() > t.shape[0]:  # per-token timesteps: a noise mask is set
            per_frame_t = t.reshape(t.shape[0], -1)[:, : frames * per_frame].reshape(t.shape[0], frames, per_frame)
            frame_t = per_frame_t.amax(dim=(0, 2))
            conditioned = (frame_t < frame_t.amax() * (1 - 1e-3)).tolist()
            while lead < frames and conditioned[lead]:
                lead += 1
            if any(conditioned[lead:]):
                return CallLayout((0, 0, 0), 0, "LTX-Video: conditioning frames after unconditioned ones")
        if frames - lead < 1:
            return CallLayout((0, 0, 0), 0, "LTX-Video: every frame is conditioned, nothing to prune")
        return CallLayout((frames - lead, h, w), lead * per_frame)

    def attention_len(self, kind: str, args: dict) -> int:
        return args["img"].shape[1]

    def context_len(self, kind: str, args: dict) -> int:
        return args["txt"].shape[1] if torch.is_tensor(args.get("txt")) else 0

    def block_flops(self, kind: str, tokens: int, ctx_tokens: int) -> float:
        """Multiply-adds x2: self-attention (4 d^2 per token + n^2 d), cross-attention (2 d^2 per token, 2 d^2 per
        text token, n t d), GELU FFN 4x (8 d^2 per token)."""
        d, n, t = self.dim, tokens, ctx_tokens
        return float(2 * (14 * n * d * d + 2 * t * d * d) + 4 * n * n * d + 4 * n * t * d)

    # ---- per block ------------------------------------------------------------------------------------
    def prune_args(self, kind: str, args: dict, call, rows: KeptRows) -> dict:
        pruned = dict(args)
        pruned["img"] = gather_rows(args["img"], rows.flat)
        seq_len = args["img"].shape[1]
        cache = call.span_cache(rows)
        if "pe_vec" not in cache:
            pe = args["pe"]
            pe = type(pe)(gather_token_axis(p, rows.kept, call.batch, dim=1) for p in pe)
            vec = args["vec"]
            if vec.ndim == 3 and vec.shape[1] == seq_len:  # per-token modulation
                vec = gather_token_axis(vec, rows.kept, call.batch, dim=1)
            cache["pe_vec"] = (pe, vec)
        pruned["pe"], pruned["vec"] = cache["pe_vec"]
        return pruned
