"""Model-family adapters: everything that differs between video DiTs lives behind this small interface.

An adapter knows: which diffusion-model classes it serves, the latent token grid of a call, how to hand a
block only the kept tokens (rope rows, modulation), whether its blocks mutate inputs, and a FLOP model.
Adapters are stored inside model_options, so they hold plain values only, never modules or tensors.
"""

from .wan import WanAdapter

ADAPTERS = (WanAdapter,)


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
        or f"model: TAPE does not support '{name}'. Supported: native Wan 2.1 T2V/I2V and Wan 2.2 "
        "(TI2V-5B, A14B) loaded with ComfyUI's own loaders. HunyuanVideo and LTX-Video are planned."
    )
