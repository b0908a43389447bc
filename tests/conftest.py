import logging

import pytest
from comfy_harness import (
    WAN_KINDS,
    import_comfy,
    load_pack,
    one_torch_thread,
    register_model_folder,
    write_wan_checkpoint,
)

import_comfy()
load_pack()  # test modules import `comfyui_tape` at module level


@pytest.fixture(scope="session")
def tape():
    return load_pack()


@pytest.fixture(scope="session")
def wan_models(tmp_path_factory):
    """kind -> checkpoint name, written once into a registered diffusion_models folder."""
    folder = tmp_path_factory.mktemp("diffusion_models")
    register_model_folder(folder)
    return {kind: write_wan_checkpoint(folder, kind) for kind in WAN_KINDS}


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module of tiny-model tests (comfy_harness.one_torch_thread says why)."""
    yield from one_torch_thread()


@pytest.fixture
def tape_summaries(caplog):
    """RunStats objects logged by TAPE's end-of-run summary, in order."""
    caplog.set_level(logging.INFO, logger="TAPE")
    return lambda: [r.tape_stats for r in caplog.records if hasattr(r, "tape_stats")]
