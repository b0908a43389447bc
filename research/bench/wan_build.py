"""Random-weight Wan 2.1 T2V models at real sizes, built from ComfyUI's own WanModel class and loaded into a real
ModelPatcher + model_base.WAN21 (timing does not depend on the weights' values, only on their shapes)."""

from __future__ import annotations

import torch

MODELS = {
    # name: WanModel sizes (ComfyUI's detection derives num_heads = dim // 128)
    "1.3b": dict(dim=1536, ffn_dim=8960, num_layers=30),
    "14b": dict(dim=5120, ffn_dim=13824, num_layers=40),
    "tiny": dict(dim=256, ffn_dim=512, num_layers=6),
}

RESOLUTIONS = {
    # name: latent (frames, height, width) of 16 channels; tokens = F * H/2 * W/2
    "480p": (21, 60, 104),  # 832x480x81 -> 32,760 tokens
    "720p": (21, 90, 160),  # 1280x720x81 -> 75,600 tokens
    "tiny": (5, 16, 20),  # 400 tokens, 80 per frame
}

TEXT_TOKENS = 512  # Wan pads prompts to 512 T5 tokens, so cond and uncond batch together


def build_state_dict(model: str, device, dtype=torch.bfloat16, seed: int = 0) -> dict:
    """WanModel state dict with well-scaled random weights, made directly on `device` (fast on a GPU)."""
    import comfy.ops
    from comfy.ldm.wan.model import WanModel

    cfg = MODELS[model]
    with torch.device("meta"):  # names, shapes and dtypes only: no memory
        ref = WanModel(
            model_type="t2v",
            in_dim=16,
            out_dim=16,
            num_heads=cfg["dim"] // 128,
            text_dim=4096,
            freq_dim=256,
            operations=comfy.ops.disable_weight_init,
            dtype=dtype,
            **cfg,
        )
    gen = torch.Generator(device=device).manual_seed(seed)
    sd = {}
    for name, p in ref.state_dict().items():
        if "norm" in name and name.endswith(".weight"):
            sd[name] = torch.ones(p.shape, dtype=p.dtype, device=device)
        elif name.endswith("bias"):
            sd[name] = torch.zeros(p.shape, dtype=p.dtype, device=device)
        else:
            fan_in = p[0].numel() if p.ndim > 1 else p.shape[-1]
            t = torch.randn(p.shape, generator=gen, dtype=torch.float32 if p.dtype != dtype else dtype, device=device)
            sd[name] = t.mul_(max(1.0, fan_in) ** -0.5).to(p.dtype)
    return sd


def load_model(sd: dict):
    """comfy.sd.load_diffusion_model_state_dict, step for step, except that the model is constructed on the load
    device: the stock function builds it on the CPU first, a 28.6 GB detour for the 14B model."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.utils

    load_device = mm.get_torch_device()
    offload_device = mm.unet_offload_device()  # the GPU itself under --highvram
    model_config = comfy.model_detection.model_config_from_unet(sd, "")
    if model_config is None:
        raise RuntimeError("ComfyUI did not detect the benchmark state dict as a Wan model")
    supported = list(model_config.supported_inference_dtypes)
    unet_dtype = mm.unet_dtype(
        model_params=comfy.utils.calculate_parameters(sd),
        supported_dtypes=supported,
        weight_dtype=comfy.utils.weight_dtype(sd),
    )
    model_config.set_inference_dtype(unet_dtype, mm.unet_manual_cast(unet_dtype, load_device, supported))
    model = model_config.get_model(sd, "", device=load_device)
    model = model.to(offload_device)
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def text_conds(seed: int = 1):
    """positive, negative conditioning as a text encoder hands them to KSampler: [1, 512, 4096] each."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(1, TEXT_TOKENS, 4096, generator=g)
    neg = torch.randn(1, TEXT_TOKENS, 4096, generator=g)
    return [[pos, {}]], [[neg, {}]]


def empty_latent(resolution: str) -> torch.Tensor:
    """What EmptyHunyuanLatentVideo hands to KSampler (zeros; the sampler adds the noise)."""
    f, h, w = RESOLUTIONS[resolution]
    return torch.zeros(1, 16, f, h, w)


def token_grid(resolution: str) -> tuple[int, int, int]:
    f, h, w = RESOLUTIONS[resolution]
    return f, h // 2, w // 2
