"""Tiny random checkpoints under the OFFICIAL file names the example workflows load, so every shipped workflow runs
as shipped on a CPU test server: its loaders find these files and ComfyUI's own detection makes them Wan models.

- diffusion models: 4 blocks of dim 128 (one head) of the right Wan variant (t2v, i2v, TI2V-5B), stored the way the
  file name says (fp16, or ComfyUI's scaled fp8 for *_fp8_scaled*); the two Wan 2.2 14B experts get other seeds.
- VAEs: ComfyUI builds the Wan 2.1 / 2.2 VAE at full size whatever the file holds (dims are not read from the
  checkpoint), so these are full-size with cheap random bf16 weights (127M / 705M parameters).
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
}
LOADERS = {"UNETLoader": 0, "VAELoader": 0, "LoraLoaderModelOnly": 0}  # node type -> widget index of the file name
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
    from comfy_harness import build_wan_state_dict

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
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    pool = torch.randn(max(math.prod(s) for s in shapes.values()) * 2, generator=g).to(torch.bfloat16)
    offsets = torch.randint(0, pool.numel() // 2, (len(shapes),), generator=g).tolist()
    sd = {}
    for (name, shape), off in zip(shapes.items(), offsets):
        if name.endswith("gamma"):
            sd[name] = torch.ones(shape, dtype=torch.bfloat16)
        elif name.endswith("bias"):
            sd[name] = torch.zeros(shape, dtype=torch.bfloat16)
        else:
            n, fan_in = math.prod(shape), math.prod(shape[1:]) if len(shape) > 1 else 1
            sd[name] = (pool[off : off + n] * fan_in**-0.5).view(shape)
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
            elif folder == "vae":
                sd = wan_vae(kind, seed=_seed(name))
            else:
                sd = wan_lora(name, kind)
            save_file(sd, str(path), metadata={"tiny_random": json.dumps({"for": name, "kind": kind})})
            written.append(path)
    return written
