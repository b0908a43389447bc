"""The testbed model: ComfyUI's own `comfy.ldm.wan.model.WanModel` at a small size, built for training.

The config is what ComfyUI's Wan detection (`comfy/model_detection.py`) reads back from the checkpoint:
num_heads = dim // 128, freq_dim 256, text_dim 4096, patch (1, 2, 2), qk_norm and cross_attn_norm on,
no `img_emb` (so t2v). Saved without a key prefix, the state dict loads through UNETLoader as Wan 2.1 T2V.
ComfyUI is imported inside the functions, so importing this module stays cheap.
"""

import math
import types

import torch
from torch import nn

from . import vocab

TESTBED_CONFIG = {
    "model_type": "t2v",
    "patch_size": (1, 2, 2),
    "in_dim": 16,
    "out_dim": 16,
    "dim": 256,
    "ffn_dim": 1024,
    "freq_dim": 256,
    "text_dim": vocab.TEXT_DIM,
    "num_heads": 2,  # dim // 128: ComfyUI's detection assumes 128-wide heads
    "num_layers": 8,
    "window_size": (-1, -1),
    "qk_norm": True,
    "cross_attn_norm": True,
    "eps": 1e-6,
}

# Plain torch layers for ComfyUI's `operations` argument: they initialise and train like any nn.Module
# (comfy.ops.disable_weight_init skips initialisation, which is right for loading, wrong for training).
TORCH_OPS = types.SimpleNamespace(
    Linear=nn.Linear,
    Conv2d=nn.Conv2d,
    Conv3d=nn.Conv3d,
    LayerNorm=nn.LayerNorm,
    RMSNorm=nn.RMSNorm,
    Embedding=nn.Embedding,
)


def build_model(device="cpu", seed: int = 0, config: dict | None = None) -> nn.Module:
    """A freshly initialised fp32 testbed WanModel on `device` (weights fixed by `seed`)."""
    from comfy.ldm.wan.model import WanModel

    with torch.random.fork_rng(devices=[]):  # leave the caller's CPU RNG stream alone (tests share it)
        torch.manual_seed(seed)
        model = WanModel(**(config or TESTBED_CONFIG), operations=TORCH_OPS, device=device, dtype=torch.float32)
        init_weights(model)
    return model


@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """Wan's reference initialisation (Wan2.1 `WanModel.init_weights`) plus its modulation-parameter init."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.xavier_uniform_(model.patch_embedding.weight.flatten(1))
    nn.init.zeros_(model.patch_embedding.bias)
    for seq in (model.text_embedding, model.time_embedding):
        for m in seq.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
    nn.init.zeros_(model.head.head.weight)  # the model starts by predicting zero velocity
    for block in model.blocks:
        block.modulation.copy_(torch.randn_like(block.modulation) / math.sqrt(model.dim))
    model.head.modulation.copy_(torch.randn_like(model.head.modulation) / math.sqrt(model.dim))


def export_state_dict(model: nn.Module, dtype=torch.bfloat16) -> dict[str, torch.Tensor]:
    """The model's weights as ComfyUI's UNETLoader expects them: bare WanModel keys, cast to `dtype`, contiguous."""
    return {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}


# The linear layers that write into the residual stream: zeroed, a new block adds nothing and the grown model
# computes exactly what the model it grew from computed.
BLOCK_OUTPUTS = ("self_attn.o.weight", "self_attn.o.bias", "cross_attn.o.weight", "cross_attn.o.bias")
FFN_OUTPUTS = ("ffn.2.weight", "ffn.2.bias")


def grow_state_dict(state: dict[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    """Deepen a trained testbed: block i of the old model becomes block i * r, and each is followed by r - 1
    copies of itself whose output layers are zero (r = blocks / old blocks). Function-preserving: the deeper model
    starts where the trained one ended, and fine-tuning then makes the new blocks do work (progressive stacking).
    """
    old = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    if blocks % old:
        raise ValueError(f"--blocks {blocks} must be a multiple of the checkpoint's {old} blocks")
    r = blocks // old
    out = {k: v for k, v in state.items() if not k.startswith("blocks.")}
    for k, v in state.items():
        if not k.startswith("blocks."):
            continue
        _, i, rest = k.split(".", 2)
        for j in range(r):
            zero = j > 0 and rest in BLOCK_OUTPUTS + FFN_OUTPUTS
            out[f"blocks.{int(i) * r + j}.{rest}"] = torch.zeros_like(v) if zero else v.clone()
    return out


def to_scaled_fp8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's "scaled fp8" checkpoint format (comfy/model_detection.py, comfy/ops.py scaled_fp8_ops): every
    2-D linear weight as float8_e4m3fn with a per-tensor float32 `scale_weight`, the rest bf16, and
    a `scaled_fp8` marker tensor. UNETLoader loads it on any device (weights are upcast per layer)."""
    out = {"scaled_fp8": torch.empty(0, dtype=torch.float8_e4m3fn)}
    fp8_max = torch.finfo(torch.float8_e4m3fn).max
    for k, v in state.items():
        if k.endswith(".weight") and v.ndim == 2:  # exactly the nn.Linear weights of WanModel
            scale = v.float().abs().amax().clamp(min=1e-12) / fp8_max
            out[k] = (v.float() / scale).to(torch.float8_e4m3fn)
            out[k[: -len("weight")] + "scale_weight"] = scale.reshape(())
            out[k[: -len("weight")] + "scale_input"] = torch.ones(())  # unused unless fp8 matmuls are on
        else:
            out[k] = v.to(torch.bfloat16).contiguous()
    return out
