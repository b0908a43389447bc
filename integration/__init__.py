"""ComfyUI integration. patcher.py is the only module that touches ModelPatcher; runtime.py runs the patches."""
