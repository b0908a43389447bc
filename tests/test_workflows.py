"""Each example workflow is a test case: run it on a real ComfyUI server (CPU) as shipped, with numeric checks.

The Wan, HunyuanVideo and LTX-Video workflows are ComfyUI's official templates with TAPE Patch Model inserted
(tests/build_example_workflows.py). They run with tiny random weights written under the official file names
(tests/tiny_checkpoints.py); only the text encoder and CLIP vision loaders are swapped for test stand-ins
(tests/tape_test_nodes.py). Sizes and step counts shrink for CPU; nodes, links, samplers, schedulers, guiders, CFG,
guidance, LoRAs and TAPE's widgets stay as shipped.
"""

import io
import json
import re

import numpy as np
import pytest
from build_example_workflows import (
    SAMPLERS,
    SPECS,
    TAPE_BEFORE,
    TAPE_TYPE,
    build,
    model_chain,
    overlapping_nodes,
    samplers,
    templates_version,
)
from comfy_harness import REPO
from PIL import Image, ImageSequence
from tape_test_nodes import STAND_INS
from tiny_checkpoints import write_for
from workflow_server import ComfyServer, load_workflow, set_mode, set_widget, ui_to_api

SHIPPED = sorted(p.stem for p in (REPO / "example_workflows").glob("*.json"))
OFFICIAL = [s.name for s in SPECS]  # every shipped workflow but the testbed demo

# CI sizes: the shipped demo samples 16 frames of 64x64 in 20 steps; here 8 frames of 48x48 in 10 steps.
CI_LATENT = (192, 192, 29)  # EmptyHunyuanLatentVideo width, height, length -> [1, 16, 8, 24, 24]
CI_STEPS = 10
PSNR_FLOOR_DB = 19.5  # TAPE vs the same graph bypassed, CI size: measured 21.1 dB (0.1 defaults: 16.8)

# Official workflows at CI size: 5 frames (2 latent frames) of 2 x 2 or 2 x 1 tokens (width, height, length widgets
# of the latent node; LTX-Video: 9 frames, 2 latent frames of 2 x 2), 4 steps for the KSamplers (two-stage graphs:
# 2 + 2, split where the shipped graph splits its steps), 3 for the schedulers of the custom samplers. Samplers,
# schedulers' other settings, CFG, guidance, shifts and LoRA strengths stay as shipped.
CI_STEPS_WAN = 4
CI_STEPS_CUSTOM = 3
CI_VIDEO = {
    "EmptyHunyuanLatentVideo": (32, 32, 5),  # Wan 2.1 and HunyuanVideo VAEs: 8x -> latent 4 x 4 (patch 2: 2 x 2)
    "WanImageToVideo": (32, 32, 5),
    "Wan22ImageToVideoLatent": (64, 32, 5),  # Wan 2.2 VAE: 16x -> latent 2 x 4
    "EmptyLTXVLatentVideo": (64, 64, 9),  # LTX VAE: 32x, 8x in time -> latent 2 x 2 x 2 (patch 1)
    "LTXVImgToVideo": (64, 64, 9),
}
SCHEDULER_STEPS = {"BasicScheduler": 1, "LTXVScheduler": 0}  # node type -> widget index of its steps
SUMMARY = re.compile(
    r"TAPE: pruned (\d+)/(\d+) steps(?: \([^)]*\))?, (\d+)/(\d+) blocks pruned .*?mean kept fraction ([\d.]+)"
)  # "(resumed a partly denoised latent: ...)" after the steps on a second stage


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


# ---- the official templates with TAPE ---------------------------------------------------------------------------
def _stage_steps(wf: dict, stage: dict) -> int:
    """Steps one TAPE-fed node runs: KSampler all of them, KSamplerAdvanced its start..end slice; SamplerCustom (or
    the SamplerCustomAdvanced a BasicGuider feeds) the steps of the scheduler on its sigmas input."""
    w = stage["widgets_values"]
    if stage["type"] == "KSampler":
        return w[2]
    if stage["type"] == "KSamplerAdvanced":
        steps, start, end = w[3], w[7], w[8]
        return min(end, steps) - start
    nodes, links = {n["id"]: n for n in wf["nodes"]}, {lk[0]: lk for lk in wf["links"]}
    sampler = stage
    if stage["type"] == "BasicGuider":
        sampler = nodes[next(lk[3] for lk in wf["links"] if lk[1] == stage["id"] and lk[5] == "GUIDER")]
    sigmas = next(i["link"] for i in sampler["inputs"] if i["type"] == "SIGMAS")
    scheduler = nodes[links[sigmas][1]]
    return scheduler["widgets_values"][SCHEDULER_STEPS[scheduler["type"]]]


def _for_ci(name: str) -> dict:
    wf = load_workflow(f"{name}.json")
    for node_type, size in CI_VIDEO.items():
        for i, v in enumerate(size):
            set_widget(wf, node_type, i, v)
    for n in wf["nodes"]:
        w = n.get("widgets_values")
        if n["type"] == "KSampler":
            w[2] = min(w[2], CI_STEPS_WAN)
        elif n["type"] == "KSamplerAdvanced" and w[3] > CI_STEPS_WAN:  # steps, start_at_step, end_at_step
            steps, start, end = w[3], w[7], w[8]
            w[3], w[7] = CI_STEPS_WAN, round(start * CI_STEPS_WAN / steps)
            w[8] = end if end >= steps else round(end * CI_STEPS_WAN / steps)  # 10000 = "to the end" stays
        elif n["type"] in SCHEDULER_STEPS:
            k = SCHEDULER_STEPS[n["type"]]
            w[k] = min(w[k], CI_STEPS_CUSTOM)
    for n in wf["nodes"]:
        n["type"] = STAND_INS.get(n["type"], n["type"])
    return wf


def _read_video(server, entry: dict, node_id: str) -> np.ndarray:
    import av

    item = entry["outputs"][node_id]["images"][0]
    with av.open(str(server.output_dir / item["subfolder"] / item["filename"])) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _run_workflow(server, wf: dict, latent_tap: bool = False, only_latent: bool = False):
    """Run wf; return its history entry, the TAPE summaries and log of the run, and (latent_tap) the last sampler's
    latent, saved by a SaveLatent added to the prompt. only_latent: run that tap alone (no decode)."""
    info = server.get("/object_info")
    prompt = ui_to_api(wf, info)
    last = max((n for n in wf["nodes"] if n["type"] in SAMPLERS), key=lambda n: n["order"])
    tap = "tape_ci_latent"
    if latent_tap:
        prompt[tap] = {"class_type": "SaveLatent", "inputs": {"samples": [str(last["id"]), 0], "filename_prefix": tap}}
    start = server.log_size()
    entry = server.run(prompt, targets=[tap] if only_latent else None)
    log = server.server_log(since=start)
    latent = None
    if latent_tap:
        from safetensors.torch import load_file

        item = entry["outputs"][tap]["latents"][0]
        latent = load_file(str(server.output_dir / item["subfolder"] / item["filename"]))["latent_tensor"]
    return entry, [tuple(map(float, m)) for m in SUMMARY.findall(log)], log, latent


@pytest.fixture(scope="module")
def models(server):
    """Writes the files a workflow loads under the server's models/ and input/ folders when first needed."""
    return lambda wf: write_for([wf], server.workdir)


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_template_workflow_runs_with_tape(server, models, name):
    wf = _for_ci(name)
    models(wf)
    stages = samplers(wf)
    tape_run = name == "wan2.1_t2v_1.3B_tape"  # one workflow also runs bypassed, for the numbers
    entry, summaries, log, latent = _run_workflow(server, wf, latent_tap=tape_run)

    # TAPE pruned in every sampler run: one summary line per stage, over that stage's steps
    assert len(summaries) == len(stages), log[-3000:]
    for (pruned, seen, blocks, n_blocks, kept), stage in zip(summaries, stages):
        # a stage from noise keeps its dense warm-up step; a second stage resumes and warms up pruned (resume_keep)
        resumed = stage["type"] == "KSamplerAdvanced" and stage["widgets_values"][7] > 0  # its start_at_step
        assert seen == _stage_steps(wf, stage) and 0 < pruned <= seen and (pruned == seen) == resumed, (pruned, seen)
        assert 0 < blocks < n_blocks and 0 < kept < 1, (blocks, n_blocks, kept)
    assert "lora key not loaded" not in log, log[-3000:]  # the LoRA files' keys all reached the model
    assert "Missing VAE keys" not in log and "unet missing" not in log, log[-3000:]

    # the video: the shipped SaveVideo wrote every frame at the latent node's size
    save = next(str(n["id"]) for n in wf["nodes"] if n["type"] == "SaveVideo" and n.get("mode", 0) == 0)
    video = _read_video(server, entry, save)
    width, height, length = next(CI_VIDEO[n["type"]] for n in wf["nodes"] if n["type"] in CI_VIDEO)
    assert video.shape == (length, height, width, 3), video.shape

    if tape_run:
        set_mode(wf, TAPE_TYPE, 4)  # bypass, as a user would; the decode is already tested: sample only
        _, bypassed_summaries, _, ref = _run_workflow(server, wf, latent_tap=True, only_latent=True)
        assert not bypassed_summaries
        assert latent.isfinite().all() and ref.isfinite().all()
        diff = float((latent - ref).abs().max())
        print(f"{name}: TAPE vs bypassed, max |latent diff| {diff:.4f} (latent std {float(ref.std()):.3f})")
        assert diff > 0


def test_5b_workflow_image_to_video_branch(server, models):
    """The TI2V-5B template's bypassed LoadImage enabled (its group says Ctrl+B for i2v): the start image goes
    through the Wan 2.2 VAE encoder and a noise mask makes Wan 2.2 modulate per frame. Sampled only (the decode
    and save of this graph ran in the test above)."""
    wf = _for_ci("wan2.2_5B_ti2v_tape")
    set_mode(wf, "LoadImage", 0)
    models(wf)
    _, summaries, log, latent = _run_workflow(server, wf, latent_tap=True, only_latent=True)
    assert len(summaries) == 1 and summaries[0][0] > 0, log[-3000:]
    assert latent.shape == (1, 48, 2, 2, 4) and latent.isfinite().all(), latent.shape


# ---- what users see ---------------------------------------------------------------------------------------------
def test_template_browser_lists_every_workflow_with_its_thumbnail(server):
    """ComfyUI lists custom nodes' example_workflows/*.json at /api/workflow_templates ({pack folder: [names]}) and
    serves the folder at /api/workflow_templates/<pack folder>/; the frontend's template browser (1.27) asks for
    <name>.jpg there as each card's thumbnail."""
    listed = server.get("/api/workflow_templates")
    assert sorted(listed.get("ComfyUI-TAPE", [])) == SHIPPED and len(SHIPPED) == len(OFFICIAL) + 1, listed
    for name in SHIPPED:
        status, kind, body = server.get_raw(f"/api/workflow_templates/ComfyUI-TAPE/{name}.jpg")
        assert status == 200 and kind == "image/jpeg", (name, status, kind)
        with Image.open(io.BytesIO(body)) as im:
            assert im.format == "JPEG" and min(im.size) >= 256, (name, im.format, im.size)
        status, _, body = server.get_raw(f"/api/workflow_templates/ComfyUI-TAPE/{name}.json")
        assert status == 200 and json.loads(body) == load_workflow(f"{name}.json")


def test_shipped_workflows_are_the_official_templates_with_tape_before_each_sampler():
    from comfyui_tape.nodes.patch_nodes import TAPEPatchModel

    defaults = [i.default for i in TAPEPatchModel.define_schema().inputs if getattr(i, "default", None) is not None]
    assert set(SHIPPED) == {*OFFICIAL, "tape_testbed_demo"}, SHIPPED
    families = {"wan": 0, "hunyuan_video": 0, "ltxv": 0}
    for name in SHIPPED:
        wf = load_workflow(f"{name}.json")
        assert not overlapping_nodes(wf), (name, overlapping_nodes(wf))
        tapes = [n for n in wf["nodes"] if n["type"] == TAPE_TYPE]
        assert tapes and all(n["widgets_values"] == defaults for n in tapes), name  # the node's current defaults
        for stage in samplers(wf):  # TAPE last on the model path, right before the sampler (or the guider it runs)
            chain = [n["type"] for n in model_chain(wf, stage)]
            assert chain[-2:] == [TAPE_TYPE, stage["type"]] and stage["type"] in TAPE_BEFORE, (name, chain)
            if chain[0] == "UNETLoader":  # Wan, HunyuanVideo: ... -> ModelSamplingSD3 -> TAPE -> sampler / guider
                assert chain[-3] == "ModelSamplingSD3", (name, chain)
            else:  # LTX-Video: the checkpoint's model straight into TAPE -> SamplerCustom, as the template has it
                assert chain == ["CheckpointLoaderSimple", TAPE_TYPE, "SamplerCustom"], (name, chain)
        assert len(tapes) == len(samplers(wf)), name
        if name in OFFICIAL:
            families[next(f for f in families if name.startswith(f))] += 1
    assert families == {"wan": 5, "hunyuan_video": 1, "ltxv": 2}, families
    for spec in SPECS:
        shipped = load_workflow(f"{spec.name}.json")
        if shipped["extra"]["tape"]["template_package"] != f"comfyui-workflow-templates {templates_version()}":
            continue  # built from another release of the templates: the runs above still test them
        assert shipped == json.loads(json.dumps(build(spec))), f"{spec.name}: rerun tests/build_example_workflows.py"


def test_frontend_extension_is_served(server):
    """WEB_DIRECTORY is served under /extensions/<pack folder>/ and listed for the frontend to load."""
    import urllib.request

    listed = server.get("/extensions")
    assert any(p.endswith("ComfyUI-TAPE/tape_summary.js") for p in listed), listed
    with urllib.request.urlopen(server.url + "/extensions/ComfyUI-TAPE/tape_summary.js", timeout=10) as r:
        body = r.read().decode()
    assert 'name: "TAPE.estimate"' in body and 'nodeData.name !== "TAPEPatchModel"' in body
