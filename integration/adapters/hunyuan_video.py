"""HunyuanVideo (comfy.ldm.hunyuan_video.model.HunyuanVideo): 20 double-stream then 40 single-stream blocks.

Tokens: Conv3d patch (1, 2, 2), (t h w) order. `ref_latent` tokens are PREPENDED (prefix). Double blocks get img
[B, L, C] and txt [B, T, C] separately and attend over cat(img, txt); single blocks get cat(img, txt) as one `img`
(text is their suffix). pe [B, 1, L + T, d/2, 2, 2] and the additive attention mask [1, 1, L + T] cover video and
text in both kinds. Blocks write into their inputs in place (single: x +=, double: txt +=).

I2V "v2 (replace)" (guiding_frame_index) modulates the first frame's tokens with their own vec through
`modulation_dims` ranges counted from row 0: TAPE never prunes that frame (it joins the prefix), so the ranges still
hold on the gathered rows and no range has to be rewritten; the frame is the conditioning image, which the model only
has to preserve. "v1 (concat)" only adds input channels and needs nothing.
"""

from __future__ import annotations

import torch

from ...tape_core import gather_rows
from .base import CallLayout, KeptRows
from .gather import gather_token_axis


def _hunyuan_class():
    from comfy.ldm.hunyuan_video.model import HunyuanVideo

    return HunyuanVideo


def _tokens(n: int, p: int) -> int:
    return (n + p // 2) // p  # HunyuanVideo.img_ids' count per axis


def _arg(args: tuple, kwargs: dict, i: int, name: str):
    return args[i] if len(args) > i else kwargs.get(name)


class HunyuanVideoAdapter:
    name = "HunyuanVideo"
    blocks_mutate_input = True

    def __init__(self, n_double: int, n_single: int, dim: int, mlp_dim: int, patch_size: tuple[int, int, int]):
        self.blocks = tuple(("double_block", i) for i in range(n_double)) + tuple(
            ("single_block", i) for i in range(n_single)
        )
        self.dim = dim
        self.mlp_dim = mlp_dim
        self.patch_size = tuple(int(p) for p in patch_size)

    @staticmethod
    def serves(diffusion_model) -> bool:
        dm = diffusion_model
        return type(dm) is _hunyuan_class() and not HunyuanVideoAdapter._is_image_model(dm)

    @staticmethod
    def _is_image_model(dm) -> bool:
        """HunyuanImage 2.1 and its refiner run in the same class: the base with a 2-D patch, the refiner with a 3-D
        patch (1, 1, 1). Neither has the CLIP-pooled vector input every HunyuanVideo checkpoint has (vector_in)."""
        return len(dm.patch_size) != 3 or getattr(dm, "vector_in", None) is None

    @staticmethod
    def refusal(diffusion_model) -> str | None:
        dm = diffusion_model
        if type(dm).__name__ == "HunyuanVideo" and HunyuanVideoAdapter._is_image_model(dm):
            return (
                "model: TAPE does not support HunyuanImage 2.1 or its refiner (image models that ComfyUI runs through "
                "the HunyuanVideo class); TAPE prunes the frames of HunyuanVideo."
            )
        return None

    @classmethod
    def from_model(cls, dm) -> HunyuanVideoAdapter:
        mlp_dim = int(dm.hidden_size * dm.params.mlp_ratio)
        return cls(len(dm.double_blocks), len(dm.single_blocks), dm.hidden_size, mlp_dim, dm.patch_size)

    # ---- per call -------------------------------------------------------------------------------------
    def layout(self, args: tuple, kwargs: dict) -> CallLayout:
        """forward(x, timestep, context, y, txt_byt5, guidance, attention_mask, guiding_frame_index, ref_latent, ...)
        as the DIFFUSION_MODEL wrapper receives it (positional)."""
        pt, ph, pw = self.patch_size
        t, h, w = args[0].shape[2:]
        frames, per_frame = _tokens(t, pt), _tokens(h, ph) * _tokens(w, pw)
        n_prefix = 0
        ref = _arg(args, kwargs, 8, "ref_latent")
        if torch.is_tensor(ref):
            n_prefix += _tokens(ref.shape[2], pt) * _tokens(ref.shape[3], ph) * _tokens(ref.shape[4], pw)
        if _arg(args, kwargs, 7, "guiding_frame_index") is not None:
            frames, n_prefix = frames - 1, n_prefix + per_frame  # the conditioning frame: never pruned (see above)
        if frames < 1:
            return CallLayout((0, 0, 0), n_prefix, "HunyuanVideo: a single conditioned frame leaves nothing to prune")
        return CallLayout((frames, _tokens(h, ph), _tokens(w, pw)), n_prefix)

    def attention_len(self, kind: str, args: dict) -> int:
        return args["img"].shape[1] + (args["txt"].shape[1] if kind == "double_block" else 0)

    def context_len(self, kind: str, args: dict) -> int:
        return args["txt"].shape[1] if kind == "double_block" else 0

    def block_flops(self, kind: str, tokens: int, ctx_tokens: int) -> float:
        """Multiply-adds x2. Both kinds: per token 4 d^2 (qkv + out) + 2 d m (MLP), attention over every row the
        block sees (double: img + txt streams, each with its own weights, attending jointly)."""
        n = tokens + ctx_tokens
        return float(2 * n * (4 * self.dim**2 + 2 * self.dim * self.mlp_dim) + 4 * n * n * self.dim)

    # ---- per block ------------------------------------------------------------------------------------
    def prune_args(self, kind: str, args: dict, call, rows: KeptRows) -> dict:
        pruned = dict(args)
        pruned["img"] = gather_rows(args["img"], rows.flat)
        cache = call.span_cache(rows)  # rows.key holds the row count, which differs between the two block kinds
        if "pe_mask" not in cache:
            idx = rows.kept
            if kind == "double_block":  # pe and mask rows: img rows, then the (always kept) text rows
                n_img, n_txt = args["img"].shape[1], args["txt"].shape[1]
                txt_rows = torch.arange(n_img, n_img + n_txt, device=idx.device).expand(idx.shape[0], -1)
                idx = torch.cat([idx, txt_rows], dim=1)
            mask = args.get("attention_mask")
            cache["pe_mask"] = (
                gather_token_axis(args["pe"], idx, call.batch, dim=2),
                gather_token_axis(mask, idx, call.batch, dim=mask.ndim - 1) if torch.is_tensor(mask) else mask,
            )
        pruned["pe"], pruned["attention_mask"] = cache["pe_mask"]
        return pruned
