"""Real ComfyUI, in-process on CPU, for the tests: locate it, import it, load the pack, build tiny Wan checkpoints
and sample them through ComfyUI's own UNETLoader and KSampler code paths. No stubs."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK = "comfyui_tape"


def find_comfyui() -> Path:
    """COMFYUI_PATH, else the ComfyUI folder this pack is installed in (custom_nodes/..), else ~/ComfyUI."""
    candidates = []
    if os.environ.get("COMFYUI_PATH"):
        candidates.append(Path(os.environ["COMFYUI_PATH"]))
    if REPO.parent.name == "custom_nodes":
        candidates.append(REPO.parent.parent)
    candidates.append(Path.home() / "ComfyUI")
    for c in candidates:
        if (c / "comfy" / "model_patcher.py").is_file():
            return c.resolve()
    raise RuntimeError(
        "ComfyUI not found. Set COMFYUI_PATH to a ComfyUI checkout, install this pack under "
        "ComfyUI/custom_nodes/, or put ComfyUI at ~/ComfyUI. Looked in: " + ", ".join(map(str, candidates))
    )


def import_comfy(cpu: bool = True) -> Path:
    """Put ComfyUI first on sys.path and import it; cpu=False lets it use a GPU (scripts' --gpu)."""
    root = find_comfyui()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import comfy.cli_args

    comfy.cli_args.args.cpu = cpu  # before model_management initialises a device
    comfy.cli_args.args.disable_all_custom_nodes = True
    # The pack's own `nodes/` package has the same top-level name as ComfyUI's nodes.py, and pytest may put the
    # repository root in front of ComfyUI on sys.path later (it does when the pack sits in custom_nodes/ under a
    # name like ComfyUI-TAPE). Import ComfyUI's module now, while ComfyUI is first, so `import nodes` finds it.
    sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    import nodes

    if Path(nodes.__file__).resolve() != root / "nodes.py":
        raise RuntimeError(f"`import nodes` found {nodes.__file__}, not ComfyUI's nodes.py in {root}")
    return root


def load_pack():
    """Import the repo as the package ComfyUI would load (relative imports, hyphen-free name)."""
    if PACK in sys.modules:
        return sys.modules[PACK]
    spec = importlib.util.spec_from_file_location(PACK, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK] = module
    spec.loader.exec_module(module)
    return module


# ---- tiny Wan checkpoints -------------------------------------------------------------------------------
WAN_KINDS = {
    # kind: (WanModel kwargs, latent channels)
    "t2v": (dict(model_type="t2v", in_dim=16, out_dim=16), 16),
    "i2v": (dict(model_type="i2v", in_dim=36, out_dim=16), 16),
    "ti2v5b": (dict(model_type="t2v", in_dim=48, out_dim=48), 48),
}


def build_wan_state_dict(kind: str, blocks: int = 4, dim: int = 128, seed: int = 0) -> dict:
    """A random but well-scaled WanModel state dict that ComfyUI's detection maps to `kind`."""
    import comfy.ops
    import torch
    from comfy.ldm.wan.model import WanModel

    kwargs, _ = WAN_KINDS[kind]
    torch.manual_seed(seed)
    m = WanModel(
        dim=dim,
        ffn_dim=2 * dim,
        num_heads=dim // 128,
        num_layers=blocks,
        text_dim=4096,
        freq_dim=256,
        operations=comfy.ops.disable_weight_init,
        dtype=torch.float32,
        **kwargs,
    )
    sd = {}
    for name, p in m.state_dict().items():
        if name.endswith("norm_q.weight") or name.endswith("norm_k.weight") or ".weight" in name and "norm" in name:
            sd[name] = torch.ones_like(p)
        elif name.endswith("bias"):
            sd[name] = torch.zeros_like(p)
        else:
            fan_in = p[0].numel() if p.ndim > 1 else p.shape[-1]
            sd[name] = torch.randn_like(p) / max(1.0, fan_in) ** 0.5
    return sd


def write_wan_checkpoint(folder: Path, kind: str, **kw) -> str:
    from safetensors.torch import save_file

    name = f"tiny_wan_{kind}.safetensors"
    save_file(build_wan_state_dict(kind, **kw), str(folder / name))
    return name


def register_model_folder(folder: Path):
    import folder_paths

    folder_paths.add_model_folder_path("diffusion_models", str(folder), is_default=True)


def load_unet(name: str):
    import nodes

    return nodes.UNETLoader().load_unet(name, "default")[0]


def text_cond(tokens: int = 8, seed: int = 1, batch: int = 1):
    import torch

    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(batch, tokens, 4096, generator=g), {}]]


def sample(
    model,
    latent: dict,
    positive,
    negative,
    steps: int = 4,
    cfg: float = 3.0,
    seed: int = 0,
    sampler: str = "euler",
    scheduler: str = "simple",
):
    import nodes

    return nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler, positive, negative, latent)[0]["samples"]


# ---- tiny HunyuanVideo / HunyuanImage 2.1 and LTX-Video checkpoints ----------------------------------------
def _well_scaled(module, seed: int) -> dict:
    """A module's state dict with random weights scaled by fan-in, norm weights 1 and biases 0 (as for Wan)."""
    import torch

    torch.manual_seed(seed)
    sd = {}
    for name, p in module.state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if "norm" in name and leaf in ("weight", "scale"):
            sd[name] = torch.ones_like(p)
        elif leaf == "bias":
            sd[name] = torch.zeros_like(p)
        else:
            fan_in = p[0].numel() if p.ndim > 1 else p.shape[-1]
            sd[name] = torch.randn_like(p) / max(1.0, fan_in) ** 0.5
    return sd


HUNYUAN_KINDS = {
    # kind: (HunyuanVideo kwargs that ComfyUI's detection reads back from the weights, latent channels,
    #        the supported_models class detection must pick)
    # T2V (also the "custom" ref_latent variant: ref_latent goes through img_in, so it needs 16 input channels)
    "t2v": (dict(in_channels=16, out_channels=16, vec_in_dim=768, patch_size=[1, 2, 2]), 16, "HunyuanVideo"),
    # I2V: 16 noise + 16 image + 1 mask channels; HunyuanImageToVideo's "v1 (concat)" and "v2 (replace)" both run it
    "i2v": (dict(in_channels=33, out_channels=16, vec_in_dim=768, patch_size=[1, 2, 2]), 16, "HunyuanVideoI2V"),
    # SkyReels I2V: 16 noise + 16 image channels
    "skyreels": (
        dict(in_channels=32, out_channels=16, vec_in_dim=768, patch_size=[1, 2, 2]),
        16,
        "HunyuanVideoSkyreelsI2V",
    ),
    # HunyuanImage 2.1: same diffusion-model class, 2-D patch, no vector_in (that is what detection keys on)
    "image21": (
        dict(in_channels=64, out_channels=64, vec_in_dim=None, patch_size=[1, 1], axes_dim=[64, 64]),
        64,
        "HunyuanImage21",
    ),
    # HunyuanImage 2.1 refiner: a 3-D patch [1, 1, 1] on a 5-D latent, 64 noise + 64 image channels, no vector_in
    "image21_refiner": (
        dict(in_channels=128, out_channels=64, vec_in_dim=None, patch_size=[1, 1, 1]),
        64,
        "HunyuanImage21Refiner",
    ),
}


def build_hunyuan_state_dict(
    kind: str, double: int = 2, single: int = 2, hidden: int = 256, context_dim: int = 4096, seed: int = 0
) -> dict:
    """A random but well-scaled comfy.ldm.hunyuan_video.model.HunyuanVideo state dict (ComfyUI's key names) that
    ComfyUI's detection maps to `kind`. Detection fixes head_dim 128 (num_heads = hidden // 128), mlp_ratio 4,
    theta 256, qkv_bias, axes_dim [16, 56, 56] (3-D) or [64, 64] (2-D); it reads channels and patch from img_in,
    vec_in_dim 768 from the presence of vector_in, guidance_embed from guidance_in, context_in_dim from txt_in."""
    import comfy.ops
    import torch
    from comfy.ldm.hunyuan_video.model import HunyuanVideo

    kwargs, _, _ = HUNYUAN_KINDS[kind]
    kwargs = {"axes_dim": [16, 56, 56], **kwargs}
    m = HunyuanVideo(
        context_in_dim=context_dim,
        hidden_size=hidden,
        mlp_ratio=4.0,
        num_heads=hidden // 128,
        depth=double,
        depth_single_blocks=single,
        theta=256,
        qkv_bias=True,
        guidance_embed=True,
        byt5=False,
        meanflow=False,
        operations=comfy.ops.disable_weight_init,
        dtype=torch.float32,
        **kwargs,
    )
    return _well_scaled(m, seed)


def write_hunyuan_checkpoint(folder: Path, kind: str, **kw) -> str:
    from safetensors.torch import save_file

    name = f"tiny_hunyuan_{kind}.safetensors"
    save_file(build_hunyuan_state_dict(kind, **kw), str(folder / name))
    return name


LTXV_KINDS = {
    # kind: LTXVModel kwargs. Detection: blocks from transformer_blocks.N, attention_head_dim = attn2.to_k rows // 32
    # (so 32 heads always), cross_attention_dim = attn2.to_k columns (= inner dim: the caption projection's output);
    # in_channels 128 and caption_channels 4096 are the class defaults.
    "t2v": dict(),
}


def build_ltxv_state_dict(kind: str = "t2v", blocks: int = 2, head_dim: int = 4, seed: int = 0) -> dict:
    """A random but well-scaled comfy.ldm.lightricks.model.LTXVModel state dict: 32 heads x head_dim (inner dim
    32 * head_dim), 128 latent channels, 4096 caption channels, `blocks` transformer blocks."""
    import comfy.ops
    import torch
    from comfy.ldm.lightricks.model import LTXVModel

    inner = 32 * head_dim
    m = LTXVModel(
        in_channels=128,
        cross_attention_dim=inner,
        attention_head_dim=head_dim,
        num_attention_heads=32,
        caption_channels=4096,
        num_layers=blocks,
        operations=comfy.ops.disable_weight_init,
        dtype=torch.float32,
        **LTXV_KINDS[kind],
    )
    return _well_scaled(m, seed)


def write_ltxv_checkpoint(folder: Path, kind: str = "t2v", **kw) -> str:
    from safetensors.torch import save_file

    name = f"tiny_ltxv_{kind}.safetensors"
    save_file(build_ltxv_state_dict(kind, **kw), str(folder / name))
    return name


def hunyuan_cond(tokens: int = 8, seed: int = 1, batch: int = 1, guidance: float | None = 6.0, **extra):
    """A HunyuanVideo CONDITIONING as its text encoder + FluxGuidance make it: context [B, T, 4096] (llama hidden
    states, unpadded), pooled_output [B, 768] (CLIP-L; becomes `y`), guidance."""
    import torch

    g = torch.Generator().manual_seed(seed)
    d = {"pooled_output": torch.randn(batch, 768, generator=g), **extra}
    if guidance is not None:
        d["guidance"] = guidance
    return [[torch.randn(batch, tokens, 4096, generator=g), d]]


def ltxv_cond(tokens: int = 8, seed: int = 1, batch: int = 1, pad_to: int = 0, frame_rate: float = 25.0):
    """An LTX-Video CONDITIONING as its T5 encoder + LTXVConditioning make it: context [B, T, 4096], attention_mask
    [B, T] (1 = token, 0 = padding up to pad_to; ComfyUI's LTXV tokenizer pads to 128), frame_rate."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n = max(tokens, pad_to)
    mask = torch.zeros(batch, n, dtype=torch.long)
    mask[:, :tokens] = 1
    ctx = torch.randn(batch, n, 4096, generator=g) * mask[..., None]
    return [[ctx, {"attention_mask": mask, "frame_rate": frame_rate}]]


class FakeVAE:
    """Stands in for a VAE in ComfyUI's own conditioning nodes (HunyuanImageToVideo, LTXVImgToVideo, LTXVAddGuide),
    which only call `encode(pixels [N, H, W, 3])` and read `downscale_index_formula`: a deterministic latent of the
    right shape ([1, C, (N - 1) // t + 1, H // s, W // s]: average-pooled pixels tiled over C channels)."""

    def __init__(self, channels: int, time_scale: int, space_scale: int):
        self.channels = channels
        self.downscale_index_formula = (time_scale, space_scale, space_scale)

    def encode(self, pixels):
        import torch

        t, s, _ = self.downscale_index_formula
        frames = (pixels.shape[0] - 1) // t + 1
        x = pixels[:, :, :, :3].movedim(-1, 1)  # [N, 3, H, W]
        x = torch.nn.functional.avg_pool2d(x, s)[:frames]  # [F, 3, h, w]
        x = x.repeat(1, (self.channels + 2) // 3, 1, 1)[:, : self.channels]  # [F, C, h, w]
        return (x.movedim(0, 1)[None] * 2.0 - 1.0).contiguous()


def diffusion_model_class(model) -> str:
    """Name of the supported_models config class ComfyUI detected for a loaded ModelPatcher."""
    return type(model.model.model_config).__name__


class RowSpy:
    """A block replace installed before TAPE (what another node pack would set): TAPE chains it and hands it the
    rows the original block gets. Records, per block call, what the block receives."""

    def __init__(self, key: tuple, log: list):
        self.key, self.log = key, log

    def __deepcopy__(self, memo):  # ModelPatcher.clone deep-copies model_options: keep recording into `log`
        return self

    def __call__(self, args, extra):
        import torch

        t = args["transformer_options"]
        pe = args.get("pe")
        txt = args.get("txt")
        vec = args.get("vec")
        self.log.append(
            dict(
                kind=self.key[0],
                index=self.key[1],
                rows=args["img"].shape[1],
                batch=args["img"].shape[0],
                txt=txt.shape[1] if torch.is_tensor(txt) else None,
                vec=tuple(vec.shape) if torch.is_tensor(vec) else None,
                pe=(pe[0] if isinstance(pe, tuple) else pe).clone() if pe is not None else None,
                mod=args.get("modulation_dims_img", args.get("modulation_dims")),
                sigma=float(t["sigmas"][0]),
                chunks=tuple(t["cond_or_uncond"]),
            )
        )
        return extra["original_block"](args)


def spy_blocks(model, log: list):
    """A clone of model with a RowSpy on every block TAPE's adapter lists (the patches_replace["dit"] keys)."""
    from comfyui_tape.integration.adapters import adapter_for

    m = model.clone()
    for kind, i in adapter_for(m.model.diffusion_model).blocks:
        m.set_model_patch_replace(RowSpy((kind, i), log), "dit", kind, i)
    return m


def permuted_full_select(seen: list | None = None):
    """A TapeRun.select replacement that keeps EVERY video token, in a random order per video (frame_major False):
    gather-all / scatter-all through the pruned path must then reproduce the unpatched model."""
    import torch
    from comfyui_tape.integration import runtime

    def select(self, scores, call, span=0):
        b, n = call.videos, scores.shape[1]
        g = torch.Generator().manual_seed(int(call.sigma * 1000) + span)
        kept = torch.stack([torch.randperm(n, generator=g) for _ in range(b)])
        if seen is not None:
            seen.append((call.sigma, span, call.grid, call.n_prefix, tuple(call.chunks)))
        return runtime.Selection(call.sigma, kept, frame_major=False, layout=(call.grid, call.n_prefix))

    return select


def one_torch_thread():
    """Generator for a module-scoped fixture: run torch on one thread, then restore. These tiny models' ops are
    microseconds of work; on a busy 2-core machine the second OpenMP thread's waits made each sample 10-20x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def tape_patch(model, keep=0.5, mode="skip", score="random", schedule=None, reselect=None, enabled=True, start=0.0,
               end=1.0, smoothing=0.5):  # fmt: skip
    """TAPE through its nodes, as a graph would: TAPE Advanced Options -> TAPE Patch Model. Returns the MODEL."""
    from comfyui_tape.nodes.patch_nodes import TAPEAdvancedOptions, TAPEPatchModel

    options = TAPEAdvancedOptions.execute(score, smoothing, 1.0, mode, "gpu", start, end).result[0]
    return TAPEPatchModel.execute(model, keep, enabled, schedule=schedule, reselect=reselect, options=options).result[0]
