"""TAPE on ComfyUI's native LTX-Video: a tiny random LTXVModel checkpoint (4 blocks, 32 heads x 4 = 128 wide, 128
latent channels, 4096 caption channels) loaded through UNETLoader, conditioned with ComfyUI's own LTXVImgToVideo and
LTXVAddGuide nodes (a stand-in VAE encodes the images), sampled through KSampler, on CPU.

Latent [1, 128, 3, 4, 4]: 3 frames x 16 tokens (patch 1). Text: 6 tokens padded to 16 with an attention mask (as
ComfyUI's T5 tokenizer pads). Variants: T2V; I2V (noise mask 0 on frame 0: per-token timesteps, frame 0 kept whole);
guide (LTXVAddGuide appends one 16-token guide frame whose rope positions keyframe_idxs sets); I2V + guide.
"""

import logging
from functools import partial

import pytest
import torch
from comfy_harness import (
    FakeVAE,
    load_unet,
    ltxv_cond,
    permuted_full_select,
    register_model_folder,
    sample,
    spy_blocks,
    tape_patch,
    write_ltxv_checkpoint,
)
from comfyui_tape.integration import runtime
from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy

NO_WARMUP = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=0)
EVERY2 = ReselectPolicy(every=2)  # blocks 0 and 2 score, 1 and 3 pruned
F, N, T, PAD = 3, 16, 6, 16  # latent frames, tokens per frame, prompt tokens, padded text length


patch = partial(tape_patch, schedule=NO_WARMUP, reselect=EVERY2)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ltx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ltxv_models")
    register_model_folder(folder)
    return load_unet(write_ltxv_checkpoint(folder, "t2v", blocks=4))


def setup(variant, neg_tokens=T):
    """(positive, negative, latent) for a variant, built by ComfyUI's own LTX nodes."""
    from comfy_extras import nodes_lt

    pos, neg = ltxv_cond(T, 1, pad_to=PAD), ltxv_cond(neg_tokens, 2, pad_to=max(PAD, neg_tokens))
    lat = {"samples": torch.zeros(1, 128, F, 4, 4)}
    vae = FakeVAE(128, 8, 32)
    g = torch.Generator().manual_seed(5)
    if variant in ("i2v", "i2v_guide"):
        image = torch.rand(1, 128, 128, 3, generator=g)
        pos, neg, lat = nodes_lt.LTXVImgToVideo.execute(pos, neg, image, vae, 128, 128, 8 * (F - 1) + 1, 1, 1.0).result
    if variant in ("guide", "i2v_guide"):
        image = torch.rand(1, 128, 128, 3, generator=g)
        pos, neg, lat = nodes_lt.LTXVAddGuide.execute(pos, neg, vae, lat, image, 8 * (F - 1), 1.0).result
    return pos, neg, lat


@pytest.fixture(scope="module")
def refs(ltx):
    cache = {}

    def get(variant, cfg=3.0, steps=2):
        key = (variant, cfg, steps)
        if key not in cache:
            pos, neg, lat = setup(variant)
            cache[key] = sample(ltx, lat, pos, neg, steps=steps, cfg=cfg)
        return cache[key]

    return get


def test_tiny_checkpoint_loads_as_ltxv(ltx):
    assert type(ltx.model).__name__ == "LTXV"
    dm = ltx.model.diffusion_model
    assert (len(dm.transformer_blocks), dm.inner_dim, dm.out_channels) == (4, 128, 128)
    pos, neg, lat = setup("guide")
    assert lat["samples"].shape[2] == F + 1 and pos[0][1]["keyframe_idxs"].shape[2] == N  # one guide frame appended


# ---- (a) bit-identical when TAPE must do nothing -----------------------------------------------------------------
@pytest.mark.parametrize("variant", ["t2v", "i2v_guide"])
def test_off_paths_are_bit_identical(ltx, refs, variant):
    pos, neg, lat = setup(variant)
    ref = refs(variant)
    assert patch(ltx, enabled=False) is ltx
    assert torch.equal(sample(patch(ltx, keep=1.0), lat, pos, neg, steps=2, cfg=3.0), ref)
    warm = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=100)  # dense steps recording in reuse mode
    assert torch.equal(sample(patch(ltx, mode="reuse", schedule=warm), lat, pos, neg, steps=2, cfg=3.0), ref)


# ---- (b) gather-all / scatter-all in a permuted order reproduces the model --------------------------------------
@pytest.mark.parametrize(
    "variant,mode,score",
    [
        ("t2v", "skip", "attention"),
        ("t2v", "reuse", "random"),
        ("i2v", "skip", "random"),
        ("guide", "nearest", "attention"),
        ("i2v_guide", "skip", "random"),
    ],
)
def test_permuted_full_selection_reproduces_the_model(ltx, refs, monkeypatch, caplog, variant, mode, score):
    pos, neg, lat = setup(variant)
    ref = refs(variant)
    seen = []
    monkeypatch.setattr(runtime.TapeRun, "select", permuted_full_select(seen))
    caplog.set_level(logging.WARNING, logger="TAPE")
    out = sample(patch(ltx, mode=mode, score=score), lat, pos, neg, steps=2, cfg=3.0)
    err = float((out - ref).abs().max() / ref.abs().max())
    print(f"{variant} {mode} {score}: rel err {err:.2e}, selections {seen}")
    assert len({(s, span) for s, span, *_ in seen}) == 2 * 2  # 2 steps x 2 spans selected: the blocks really pruned
    assert not [r.getMessage() for r in caplog.records if r.name == "TAPE"]
    assert err <= 1e-6


# ---- (c) keep 0.5: the blocks get half of the video tokens and every conditioning / guide token ------------------
@pytest.mark.parametrize(
    "variant,mode,prefix,suffix",
    [("t2v", "skip", 0, 0), ("i2v", "reuse", N, 0), ("guide", "nearest", 0, N), ("i2v_guide", "skip", N, N)],
)
def test_keep_half_halves_the_video_rows_blocks_receive(ltx, tape_summaries, variant, mode, prefix, suffix):
    """prefix: I2V's conditioned first frame; suffix: the appended guide frame. Both are never pruned."""
    pos, neg, lat = setup(variant)
    log = []
    out = sample(patch(spy_blocks(ltx, log), keep=0.5, mode=mode), lat, pos, neg, steps=2, cfg=1.0)
    assert out.isfinite().all()
    video = F * N - prefix  # prunable video tokens
    rows = {}
    for e in log:
        rows.setdefault(e["index"], set()).add(e["rows"])
    assert {e["txt"] for e in log} == {PAD}  # the whole (padded) prompt reaches every block
    assert rows[0] == {F * N + suffix}  # the first selection's scoring block runs dense
    # block 2 reselects; with the default random score it prunes too (a draw needs no scores)
    assert rows[1] == rows[2] == rows[3] == {prefix + video // 2 + suffix}
    if variant != "t2v":  # a noise mask: per-token modulation, gathered with the rows
        assert all(e["vec"][1] == e["rows"] for e in log)
    stats = tape_summaries()[-1]
    assert len(stats.steps_pruned) == 2 and stats.kept_fracs == [0.5, 0.5] and 0 < stats.flops_saved < 0.5


# ---- (d) cond and uncond share one kept set; CFG 1 runs cond only ------------------------------------------------
@pytest.mark.parametrize("variant", ["t2v", "i2v_guide"])
def test_cond_uncond_share_kept_set_in_one_batch_and_cfg_1(ltx, variant):
    pos, neg, lat = setup(variant)
    log = []
    sample(patch(spy_blocks(ltx, log), keep=0.5), lat, pos, neg, steps=2, cfg=3.0)
    pruned = [e for e in log if e["index"] in (1, 3)]
    assert pruned and all(e["batch"] == 2 and set(e["chunks"]) == {0, 1} for e in pruned)
    for e in pruned:  # one kept set for both rows: the same rope rows (pe = (cos, sin) [B, rows, C])
        assert torch.equal(e["pe"][0], e["pe"][1])
    log.clear()
    out = sample(patch(spy_blocks(ltx, log), keep=0.5), lat, pos, neg, steps=2, cfg=1.0)
    pruned = [e for e in log if e["index"] in (1, 3)]
    assert out.isfinite().all() and pruned and all(e["batch"] == 1 and e["chunks"] == (0,) for e in pruned)


def test_cond_uncond_share_kept_set_across_two_calls(ltx):
    """Prompts padded to 16 and 21 tokens cannot share a batch: two calls per step, one kept set."""
    pos, neg, lat = setup("t2v", neg_tokens=21)
    log = []
    sample(patch(spy_blocks(ltx, log), keep=0.5), lat, pos, neg, steps=2, cfg=3.0)
    pruned = [e for e in log if e["index"] == 1]
    assert pruned and all(e["batch"] == 1 and e["rows"] == F * N // 2 for e in pruned)
    by_sigma = {}
    for e in pruned:
        by_sigma.setdefault(e["sigma"], {})[e["chunks"][0]] = e["pe"]
    assert len(by_sigma) == 2
    for s, pes in by_sigma.items():
        assert set(pes) == {0, 1} and torch.equal(pes[0], pes[1]), s
