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
