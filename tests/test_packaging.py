"""The pack as ComfyUI and the Comfy Registry see it."""

import asyncio

from comfy_harness import REPO


def test_pyproject_parses_with_comfyuis_own_parser():
    from comfy_config.config_parser import extract_node_configuration

    cfg = extract_node_configuration(str(REPO))
    assert cfg.project.name == "comfyui-tape" and cfg.project.version
    assert cfg.tool_comfy.publisher_id and cfg.tool_comfy.display_name
    assert cfg.project.supported_comfyui_version.startswith(">=")
    assert not any(d.startswith("torch") for d in cfg.project.dependencies)  # the host provides torch
    assert cfg.tool_comfy.web is None  # WEB_DIRECTORY serves web/; setting both loads the JS twice


def test_comfyui_loader_registers_the_nodes_with_tooltips():
    import nodes

    ok = asyncio.run(nodes.load_custom_node(str(REPO), module_parent="custom_nodes"))
    assert ok
    for node_id in ("TAPEPatchModel", "TAPEBudgetSchedule", "TAPELayerReselect"):
        cls = nodes.NODE_CLASS_MAPPINGS[node_id]
        schema = cls.define_schema() if hasattr(cls, "define_schema") else None
        assert schema is not None and schema.display_name.startswith("TAPE")
        for inp in schema.inputs:
            assert inp.tooltip, f"{node_id}.{inp.id} has no tooltip"
        for out in schema.outputs:
            assert out.tooltip, f"{node_id} output has no tooltip"
    assert any(str(REPO) in d or d.endswith("web") for d in nodes.EXTENSION_WEB_DIRS.values())
