"""TAPE's ComfyUI nodes (V3 API). Thin: validate inputs, build a config, call integration.patcher."""

from comfy_api.latest import ComfyExtension, io

from .patch_nodes import TAPEAdvancedOptions, TAPEBudgetSchedule, TAPELayerReselect, TAPEPatchModel
from .preview_nodes import TAPEMaskPreview

NODES: list[type[io.ComfyNode]] = [
    TAPEPatchModel,
    TAPEBudgetSchedule,
    TAPELayerReselect,
    TAPEAdvancedOptions,
    TAPEMaskPreview,
]

try:  # the testbed nodes arrive with the testbed model
    from .testbed_nodes import TESTBED_NODES

    NODES += list(TESTBED_NODES)
except ImportError:
    pass


class TapeExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)
