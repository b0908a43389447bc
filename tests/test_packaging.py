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


def test_research_tooling_stays_out_of_the_shipped_pack():
    """research/ (benchmarks, fidelity scripts, testbed training) is left out of the registry archive, so nothing
    the pack loads may import it; the demo model's modules the nodes need stay in the top-level testbed/."""
    import ast

    ignored = (REPO / ".comfyignore").read_text().split()
    assert "research/" in ignored
    shipped = [REPO / "__init__.py"]
    for folder in ("nodes", "tape_core", "integration", "testbed"):
        shipped += sorted((REPO / folder).rglob("*.py"))
    for path in shipped:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert "research" not in name.split("."), f"{path.relative_to(REPO)} imports {name}"
    for name in (
        "TAPE_demo_toy_model_8blocks.safetensors",
        "TAPE_demo_toy_model_16blocks.safetensors",
        "latent.py",
        "vocab.py",
        "model.py",
    ):
        assert (REPO / "testbed" / name).is_file(), name
