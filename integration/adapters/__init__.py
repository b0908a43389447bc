"""Model-family adapters: everything that differs between video DiTs lives behind the VideoDiTAdapter protocol
(base.py): which blocks exist, where a call's video tokens sit in each block's rows, how a block gets only the kept
rows (rope, modulation, masks), which attention call to score, and a cost model. Adding a family = a module here
and an entry in ADAPTERS. Adapters live inside model_options, so they hold plain values only.
"""

from .base import CallLayout, KeptRows, VideoDiTAdapter
from .hunyuan_video import HunyuanVideoAdapter
from .ltxv import LTXVAdapter
from .wan import WanAdapter

ADAPTERS: tuple[type[VideoDiTAdapter], ...] = (WanAdapter, HunyuanVideoAdapter, LTXVAdapter)
__all__ = ["ADAPTERS", "CallLayout", "KeptRows", "UnsupportedModelError", "VideoDiTAdapter", "adapter_for"]


class UnsupportedModelError(ValueError):
    pass


def adapter_for(diffusion_model):
    """The adapter instance for a diffusion model, or UnsupportedModelError saying what is supported."""
    for cls in ADAPTERS:
        if cls.serves(diffusion_model):
            return cls.from_model(diffusion_model)
    name = type(diffusion_model).__name__
    hint = next((cls.refusal(diffusion_model) for cls in ADAPTERS if cls.refusal(diffusion_model)), None)
    raise UnsupportedModelError(
        hint
        or f"model: TAPE does not support '{name}'. Supported, loaded with ComfyUI's own loaders: Wan 2.1 T2V/I2V, "
        "Wan 2.2 (TI2V-5B, A14B), HunyuanVideo (T2V, I2V) and LTX-Video 0.9.x."
    )
