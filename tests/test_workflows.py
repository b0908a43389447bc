"""Each example workflow is a test case: run it on a real ComfyUI server with numeric thresholds."""

import numpy as np
import pytest
from PIL import Image, ImageSequence
from workflow_server import ComfyServer, load_workflow, set_mode, set_widget, ui_to_api

# CI sizes: the shipped demo samples 16 frames of 64x64 in 20 steps; here 8 frames of 48x48 in 10 steps.
CI_LATENT = (192, 192, 29)  # EmptyHunyuanLatentVideo width, height, length -> [1, 16, 8, 24, 24]
CI_STEPS = 10
PSNR_FLOOR_DB = 19.5  # TAPE vs the same graph bypassed, CI size: measured 21.1 dB (0.1 defaults: 16.8)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ComfyServer(tmp_path_factory.mktemp("comfy")).start()
    yield s
    s.stop()


def _frames(server, entry, node_id) -> np.ndarray:
    img = entry["outputs"][node_id]["images"][0]
    path = server.output_dir / img["subfolder"] / img["filename"]
    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB"), dtype=np.float32) / 255 for f in ImageSequence.Iterator(im)])


def test_testbed_demo_workflow_runs_and_stays_close_to_unpruned(server):
    wf = load_workflow("tape_testbed_demo.json")
    for i, v in enumerate(CI_LATENT):
        set_widget(wf, "EmptyHunyuanLatentVideo", i, v)
    set_widget(wf, "KSampler", 2, CI_STEPS)
    info = server.get("/object_info")
    save_id = next(str(n["id"]) for n in wf["nodes"] if n["type"] == "SaveAnimatedWEBP")

    tape = _frames(server, server.run(ui_to_api(wf, info)), save_id)
    assert "TAPE: pruned 9/10 steps" in server.server_log()
    set_mode(wf, "TAPEPatchModel", 4)  # bypass, as a user would
    ref = _frames(server, server.run(ui_to_api(wf, info)), save_id)

    assert tape.shape == ref.shape == (8, 48, 48, 3)
    mse = float(((tape - ref) ** 2).mean())
    psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
    print(f"demo workflow, TAPE vs bypassed: {psnr:.2f} dB")
    assert 0 < mse and psnr >= PSNR_FLOOR_DB, psnr


def test_frontend_extension_is_served(server):
    """WEB_DIRECTORY is served under /extensions/<pack folder>/ and listed for the frontend to load."""
    import urllib.request

    listed = server.get("/extensions")
    assert any(p.endswith("ComfyUI-TAPE/tape_summary.js") for p in listed), listed
    with urllib.request.urlopen(server.url + "/extensions/ComfyUI-TAPE/tape_summary.js", timeout=10) as r:
        body = r.read().decode()
    assert 'name: "TAPE.estimate"' in body and 'nodeData.name !== "TAPEPatchModel"' in body
