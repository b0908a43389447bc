"""Tiny random checkpoints under the OFFICIAL file names the example workflows load, so every shipped workflow runs
as shipped on a CPU test server: its loaders find these files and ComfyUI's own detection makes them Wan,
HunyuanVideo and LTX-Video models.

- diffusion models: 4 blocks of dim 128 (one head) of the right Wan variant (t2v, i2v, TI2V-5B), stored the way the
  file name says (fp16, or ComfyUI's scaled fp8 for *_fp8_scaled*); the two Wan 2.2 14B experts get other seeds.
- VAEs: ComfyUI builds the Wan 2.1 / 2.2 VAE at full size whatever the file holds (dims are not read from the
  checkpoint), so these are full-size with cheap random bf16 weights (127M / 705M parameters).
- HunyuanVideo T2V: 2 double + 2 single blocks of hidden 256 (bf16); its VAE full-size random bf16 (246M
  parameters: comfy/sd.py builds the 3-D AutoencoderKL from a fixed config).
- LTX-Video 2B 0.9 checkpoint (CheckpointLoaderSimple): a 2-block LTXV transformer (32 heads x 4) under
  `model.diffusion_model.` and the full-size version-0 video VAE (419M parameters, random bf16) under `vae.`.
- LoRAs: rank-4 random LoRAs on every attention and FFN linear layer, under the keys ComfyUI maps for Wan.
Text encoders and CLIP vision are not files here: tests/tape_test_nodes.py stands in for their loaders.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

# official file name -> (models folder, what to write)
OFFICIAL_FILES = {
    "wan2.1_t2v_1.3B_fp16.safetensors": ("diffusion_models", "t2v"),
    "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors": ("diffusion_models", "t2v"),
    "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors": ("diffusion_models", "t2v"),
    "wan2.2_ti2v_5B_fp16.safetensors": ("diffusion_models", "ti2v5b"),
    "wan2.1_i2v_480p_14B_fp16.safetensors": ("diffusion_models", "i2v"),
    "wan_2.1_vae.safetensors": ("vae", "2.1"),
    "wan2.2_vae.safetensors": ("vae", "2.2"),
    "wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors": ("loras", "t2v"),
    "wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors": ("loras", "t2v"),
    "hunyuan_video_t2v_720p_bf16.safetensors": ("diffusion_models", "hunyuan_t2v"),
    "hunyuan_video_vae_bf16.safetensors": ("vae", "hunyuan"),
    "ltx-video-2b-v0.9.safetensors": ("checkpoints", "ltxv"),
}
# node type -> widget index of the file name
LOADERS = {"UNETLoader": 0, "VAELoader": 0, "LoraLoaderModelOnly": 0, "CheckpointLoaderSimple": 0}
INPUT_IMAGES = {"LoadImage": 0}
BLOCKS, DIM, LORA_RANK = 4, 128, 4


def files_used(workflows: list[dict]) -> dict[str, set[str]]:
    """node type -> file names the workflows load (bypassed nodes included: a user may enable them)."""
    used: dict[str, set[str]] = {}
    for wf in workflows:
        for n in wf["nodes"]:
            for table in (LOADERS, INPUT_IMAGES):
                if n["type"] in table:
                    used.setdefault(n["type"], set()).add(n["widgets_values"][table[n["type"]]])
    return used


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def wan_diffusion_model(name: str, kind: str) -> dict:
    import torch
    from comfy_harness import build_hunyuan_state_dict, build_wan_state_dict

    if kind == "hunyuan_t2v":
        sd = build_hunyuan_state_dict("t2v", seed=_seed(name))
        return {k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()}

    sd = build_wan_state_dict(kind, blocks=BLOCKS, dim=DIM, seed=_seed(name))
    if "fp8_scaled" in name:
        from comfyui_tape.testbed.model import to_scaled_fp8

        return to_scaled_fp8(sd)
    dtype = torch.float16 if "fp16" in name else torch.bfloat16
    return {k: v.to(dtype).contiguous() for k, v in sd.items()}


def wan_vae(version: str, seed: int = 0) -> dict:
    """Full-size Wan VAE state dict (comfy/sd.py builds it at full size whatever the file holds) with well-scaled
    random bf16 weights: conv and linear weights ~ N(0, 1/fan_in) copied from one shared random pool (fast: no
    700M-sample draw), RMS_norm gammas 1, biases 0."""
    import torch

    if version == "2.1":
        from comfy.ldm.wan.vae import WanVAE

        dim, z_dim = 96, 16
    else:
        from comfy.ldm.wan.vae2_2 import WanVAE

        dim, z_dim = 160, 48
    with torch.device("meta"):
        model = WanVAE(
            dim=dim,
            z_dim=z_dim,
            dim_mult=[1, 2, 4, 4],
            num_res_blocks=2,
            attn_scales=[],
            temperal_downsample=[False, True, True],
            dropout=0.0,
        )
    return _full_size_random({k: v.shape for k, v in model.state_dict().items()}, seed)


def _full_size_random(shapes: dict, seed: int) -> dict:
    """Cheap well-scaled random bf16 weights for these shapes: conv / linear weights ~ N(0, 1/fan_in) from one shared
    pool, norm gammas and statistics' standard deviations 1, biases and means 0."""
    import torch

    g = torch.Generator().manual_seed(seed)
    pool = torch.randn(max(math.prod(s) for s in shapes.values()) * 2, generator=g).to(torch.bfloat16)
    offsets = torch.randint(0, pool.numel() // 2, (len(shapes),), generator=g).tolist()
    sd = {}
    for (name, shape), off in zip(shapes.items(), offsets):
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "gamma" or "std" in leaf or ("norm" in name and leaf == "weight"):
            sd[name] = torch.ones(shape, dtype=torch.bfloat16)
        elif leaf == "bias" or "mean" in leaf or leaf == "channel" or ("norm" in name and leaf == "bias"):
            sd[name] = torch.zeros(shape, dtype=torch.bfloat16)
        else:
            n, fan_in = math.prod(shape), math.prod(shape[1:]) if len(shape) > 1 else 1
            sd[name] = (pool[off : off + n] * fan_in**-0.5).view(shape)
    return sd


def hunyuan_vae(seed: int = 0) -> dict:
    """Full-size HunyuanVideo VAE (the 3-D AutoencoderKL comfy/sd.py builds for `decoder.conv_in.conv.weight`)."""
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL

    ddconfig = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0, "conv3d": True,
                "time_compress": 4}  # fmt: skip
    with torch.device("meta"):
        model = AutoencoderKL(ddconfig=ddconfig, embed_dim=16)
    return _full_size_random({k: v.shape for k, v in model.state_dict().items()}, seed)


def ltxv_checkpoint(name: str) -> dict:
    """LTX-Video 2B 0.9 as one checkpoint: tiny transformer + full-size version-0 VAE (what comfy/sd.py builds)."""
    import torch
    from comfy.ldm.lightricks.vae.causal_video_autoencoder import VideoVAE
    from comfy_harness import build_ltxv_state_dict

    with torch.device("meta"):
        vae = VideoVAE(version=0)
    sd = {f"vae.{k}": v for k, v in _full_size_random({k: v.shape for k, v in vae.state_dict().items()}, 1).items()}
    model = build_ltxv_state_dict("t2v", seed=_seed(name))
    sd.update({f"model.diffusion_model.{k}": v.to(torch.bfloat16).contiguous() for k, v in model.items()})
    return sd


def wan_lora(name: str, kind: str) -> dict:
    """Rank-4 LoRA (lora_down / lora_up / alpha, the lightx2v LoRAs' format) on every attention projection and FFN
    linear of the tiny model, keyed `diffusion_model.blocks.N.<module>` as ComfyUI's Wan LoRA key map expects."""
    import torch

    modules = [f"{a}.{p}" for a in ("self_attn", "cross_attn") for p in "qkvo"] + ["ffn.0", "ffn.2"]
    shapes = {"ffn.0": (2 * DIM, DIM), "ffn.2": (DIM, 2 * DIM)}
    g = torch.Generator().manual_seed(_seed(name))
    sd = {}
    for b in range(BLOCKS):
        for m in modules:
            out_f, in_f = shapes.get(m, (DIM, DIM))
            key = f"diffusion_model.blocks.{b}.{m}"
            sd[f"{key}.lora_down.weight"] = (torch.randn(LORA_RANK, in_f, generator=g) / in_f**0.5).bfloat16()
            sd[f"{key}.lora_up.weight"] = (0.1 * torch.randn(out_f, LORA_RANK, generator=g) / LORA_RANK**0.5).bfloat16()
            sd[f"{key}.alpha"] = torch.tensor(float(LORA_RANK))
    return sd


def input_image(path: Path, size=(96, 64)):
    """A start image for LoadImage: a colour gradient with a dark square (some structure for I2V to keep)."""
    import numpy as np
    from PIL import Image

    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x / w, y / h, 1 - x / w], -1)
    rgb[h // 4 : h // 2, w // 4 : w // 2] = 0.1
    Image.fromarray((rgb * 255).astype("uint8")).save(path)


def write_for(workflows: list[dict], base: Path) -> list[Path]:
    """Write every file the workflows load under base/models/<folder>/ and base/input/; returns the paths."""
    from safetensors.torch import save_file

    written = []
    for node_type, names in sorted(files_used(workflows).items()):
        for name in sorted(names):
            if node_type in INPUT_IMAGES:
                path = base / "input" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                input_image(path)
                written.append(path)
                continue
            if name not in OFFICIAL_FILES:
                raise KeyError(f"{node_type} loads {name!r}: add it to OFFICIAL_FILES in tests/tiny_checkpoints.py")
            folder, kind = OFFICIAL_FILES[name]
            path = base / "models" / folder / name
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if folder == "diffusion_models":
                sd = wan_diffusion_model(name, kind)
            elif folder == "checkpoints":
                sd = ltxv_checkpoint(name)
            elif kind == "hunyuan":
                sd = hunyuan_vae(seed=_seed(name))
            elif folder == "vae":
                sd = wan_vae(kind, seed=_seed(name))
            else:
                sd = wan_lora(name, kind)
            save_file(sd, str(path), metadata={"tiny_random": json.dumps({"for": name, "kind": kind})})
            written.append(path)
    return written
