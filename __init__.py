"""ComfyUI-TAPE: training-free temporal-aware token pruning for native video DiTs in ComfyUI."""

WEB_DIRECTORY = "./web"


def comfy_entrypoint():
    from .nodes import TapeExtension

    return TapeExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
