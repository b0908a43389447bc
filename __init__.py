"""ComfyUI-TAPE: training-free temporal-aware token pruning for native video DiTs in ComfyUI."""

import os

WEB_DIRECTORY = "./web"
TESTBED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testbed")


def comfy_entrypoint():
    import folder_paths

    from .nodes import TapeExtension
    from .nodes.routes import register_routes

    # The small testbed model ships with the pack: list it in UNETLoader so the demo workflow runs anywhere.
    folder_paths.add_model_folder_path("diffusion_models", TESTBED_DIR)
    register_routes()  # /tape/estimate for the editor's schedule plot and speed-up estimate
    return TapeExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
