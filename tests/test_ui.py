"""What the graph shows of a run: the run record kept for the UI, and TAPE Mask Preview drawing it."""

import pytest
import torch
from comfy_harness import load_unet, sample, text_cond
from comfyui_tape.integration.patcher import last_run
from comfyui_tape.nodes.patch_nodes import TAPEPatchModel
from comfyui_tape.nodes.preview_nodes import TAPEMaskPreview, kept_mask, overlay
from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy

SCHED = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1)


@pytest.fixture(scope="module")
def run_model(wan_models):
    """A TAPE-patched tiny Wan (4 blocks: reselect at 0 and 2) after one 4-step run of a 4x8x8 latent."""
    model = load_unet(wan_models["t2v"])
    m = TAPEPatchModel.execute(model, 0.5, True, schedule=SCHED, reselect=ReselectPolicy(every=2)).result[0]
    sample(m, {"samples": torch.zeros(1, 16, 4, 8, 8)}, text_cond(8, 1), text_cond(8, 2), steps=4)
    return m


def test_run_record_holds_each_pruned_steps_kept_set_on_the_host(run_model):
    rec = last_run(run_model)
    assert rec is not None and rec.grid == (4, 4, 4) and rec.steps == 4
    assert sorted(rec.kept) == [(s, sp) for s in (1, 2, 3) for sp in (0, 1)]  # step 0 dense
    for kept in rec.kept.values():
        assert kept.device.type == "cpu" and kept.shape == (1, 4 * 8)  # k = 8 of 16 per frame, 4 frames
    assert rec.stats["steps_pruned"] == 3 and "pruned 3/4 steps" in rec.summary
    # the record is shared by every copy of the model options (ComfyUI deep-copies them per run)
    assert last_run(run_model.clone()) is rec


def test_mask_preview_dims_exactly_the_pruned_tokens(run_model):
    rec = last_run(run_model)
    mask, step, span = kept_mask(rec, -1, -1)
    assert (step, span) == (3, 0) and mask.shape == (4, 4, 4) and int(mask.sum()) == 32
    # 13 decoded frames of a causal VAE (1 + 4 x 3) at 8x the token grid; white video
    images = torch.ones(13, 32, 32, 3)
    out = TAPEMaskPreview.execute(run_model, images, -1, -1).result[0]
    assert out.shape == images.shape
    dimmed = out[..., 1] < 0.9  # the green channel drops where a token was pruned
    # image 0 -> latent frame 0; images 1-4 -> latent frame 1; ...: each image shows its latent frame's mask
    for i, f in ((0, 0), (1, 1), (4, 1), (5, 2), (12, 3)):
        want = ~mask[f].repeat_interleave(8, 0).repeat_interleave(8, 1)
        assert torch.equal(dimmed[i], want), i
    assert 0.45 < float(dimmed.float().mean()) < 0.55  # keep 0.5


def test_mask_preview_errors_name_the_node_and_input(run_model, wan_models):
    images = torch.ones(13, 32, 32, 3)
    with pytest.raises(ValueError, match=r"TAPE Mask Preview: step 0 pruned nothing.*pruned steps: \[1, 2, 3\]"):
        TAPEMaskPreview.execute(run_model, images, 0, -1)
    with pytest.raises(ValueError, match=r"TAPE Mask Preview: block 0 is not pruned"):
        TAPEMaskPreview.execute(run_model, images, -1, 0)
    # TAPE bypassed (a user comparing): the video passes unmarked, with a warning
    assert TAPEMaskPreview.execute(load_unet(wan_models["t2v"]), images, -1, -1).result[0] is images


def test_overlay_keeps_protected_leading_frames():
    mask = torch.zeros(2, 2, 2, dtype=torch.bool)  # every token of the pruned grid pruned
    out = overlay(torch.ones(9, 4, 4, 3), mask, n_lead=1)  # + 1 conditioning frame: 3 latent frames, 9 images
    assert torch.equal(out[0], torch.ones(4, 4, 3)) and bool((out[1:, ..., 1] < 0.9).all())
