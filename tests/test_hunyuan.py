"""TAPE on ComfyUI's native HunyuanVideo: tiny random checkpoints (2 double + 2 single blocks, hidden 256 = 2 heads x
128) loaded through UNETLoader, conditioned with ComfyUI's own HunyuanImageToVideo node (a stand-in VAE encodes the
start image), sampled through KSampler, on CPU.

Latent [1, 16, 3, 8, 8]: 3 frames x (4 x 4) tokens; text 8 tokens. Variants: T2V; I2V "v1 (concat)" (33 input
channels); I2V "v2 (replace)" (guiding_frame_index: frame 0 has its own modulation, TAPE keeps it); "custom"
(ref_latent: 16 tokens prepended).
"""

import logging
from functools import partial

import pytest
import torch
from comfy_harness import (
    FakeVAE,
    hunyuan_cond,
    load_unet,
    permuted_full_select,
    register_model_folder,
    sample,
    spy_blocks,
    tape_patch,
    write_hunyuan_checkpoint,
)
from comfyui_tape.integration import runtime
from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy

NO_WARMUP = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=0)
EVERY2 = ReselectPolicy(every=2)  # double 0 scores, double 1 pruned, single 0 scores, single 1 pruned
F, N, T = 3, 16, 8  # latent frames, tokens per frame, text tokens


patch = partial(tape_patch, schedule=NO_WARMUP, reselect=EVERY2)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hunyuan_models")
    register_model_folder(folder)
    models = {kind: load_unet(write_hunyuan_checkpoint(folder, kind)) for kind in ("t2v", "i2v")}
    return folder, models


def setup(hy, variant, neg_tokens=T):
    """(model, positive, negative, latent) for a variant, built the way ComfyUI's nodes build them."""
    from comfy_extras.nodes_hunyuan import HunyuanImageToVideo

    _, models = hy
    pos, neg = hunyuan_cond(T, 1), hunyuan_cond(neg_tokens, 2)
    if variant == "t2v":
        return models["t2v"], pos, neg, {"samples": torch.zeros(1, 16, F, 8, 8)}
    guidance = {"v1": "v1 (concat)", "v2": "v2 (replace)", "custom": "custom"}[variant]
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(5))
    pos, lat = HunyuanImageToVideo().encode(pos, FakeVAE(16, 4, 8), 64, 64, 4 * (F - 1) + 1, 1, guidance, image)
    return models["t2v" if variant == "custom" else "i2v"], pos, neg, lat


@pytest.fixture(scope="module")
def refs(hy):
    """Unpatched outputs per (variant, cfg), computed once."""
    cache = {}

    def get(variant, cfg=3.0, steps=2):
        key = (variant, cfg, steps)
        if key not in cache:
            model, pos, neg, lat = setup(hy, variant)
            cache[key] = sample(model, lat, pos, neg, steps=steps, cfg=cfg)
        return cache[key]

    return get


# ---- checkpoints: ComfyUI's detection picks the intended class --------------------------------------------------
def test_tiny_checkpoints_load_as_intended(hy):
    _, models = hy
    assert type(models["t2v"].model).__name__ == "HunyuanVideo"
    assert type(models["i2v"].model).__name__ == "HunyuanVideoI2V"
    dm = models["t2v"].model.diffusion_model
    assert (len(dm.double_blocks), len(dm.single_blocks), dm.hidden_size, dm.num_heads) == (2, 2, 256, 2)
    assert list(dm.patch_size) == [1, 2, 2] and dm.params.guidance_embed and dm.vector_in is not None


# ---- (a) bit-identical when TAPE must do nothing -----------------------------------------------------------------
def test_off_paths_are_bit_identical(hy, refs):
    model, pos, neg, lat = setup(hy, "t2v")
    ref = refs("t2v")
    assert patch(model, enabled=False) is model
    for kw in (dict(keep=1.0), dict(start=0.99, end=1.0)):
        assert torch.equal(sample(patch(model, **kw), lat, pos, neg, steps=2, cfg=3.0), ref), kw
    # every step a dense warm-up step in reuse mode: the patches record residuals but change nothing
    warm = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=100)
    assert torch.equal(sample(patch(model, mode="reuse", schedule=warm), lat, pos, neg, steps=2, cfg=3.0), ref)


# ---- (b) gather-all / scatter-all in a permuted order reproduces the model --------------------------------------
@pytest.mark.parametrize(
    "variant,mode,score,cfg",
    [
        ("t2v", "skip", "attention", 3.0),
        ("t2v", "reuse", "random", 3.0),
        ("v1", "skip", "random", 3.0),
        ("v2", "skip", "attention", 1.0),
        ("v2", "skip", "random", 3.0),
        ("custom", "nearest", "attention", 3.0),
    ],
)
def test_permuted_full_selection_reproduces_the_model(hy, refs, monkeypatch, caplog, variant, mode, score, cfg):
    """CFG 3 with a plain negative: for v2 and custom the uncond rows carry no guiding frame / ref_latent, so cond and
    uncond run as calls of different layouts at the same step; the kept set must still mean the same video tokens."""
    model, pos, neg, lat = setup(hy, variant)
    ref = refs(variant, cfg)
    seen = []
    monkeypatch.setattr(runtime.TapeRun, "select", permuted_full_select(seen))
    caplog.set_level(logging.WARNING, logger="TAPE")
    out = sample(patch(model, mode=mode, score=score), lat, pos, neg, steps=2, cfg=cfg)
    err = float((out - ref).abs().max() / ref.abs().max())
    print(f"{variant} {mode} {score} cfg {cfg}: rel err {err:.2e}, selections {seen}")
    assert len({(s, span) for s, span, *_ in seen}) == 2 * 2  # 2 steps x 2 spans selected: the blocks really pruned
    assert not [r.getMessage() for r in caplog.records if r.name == "TAPE"]
    assert err <= 1e-6


# ---- (c) keep 0.5: the blocks get half of the video tokens and every text / conditioning token ------------------
@pytest.mark.parametrize(
    "variant,mode,prefix",
    [("t2v", "skip", 0), ("v1", "nearest", 0), ("v2", "reuse", N), ("custom", "skip", N)],
)
def test_keep_half_halves_the_video_rows_blocks_receive(hy, tape_summaries, variant, mode, prefix):
    """prefix: rows TAPE must never prune before the video (v2: the guiding frame; custom: the ref_latent tokens)."""
    model, pos, neg, lat = setup(hy, variant)
    log = []
    out = sample(patch(spy_blocks(model, log), keep=0.5, mode=mode), lat, pos, neg, steps=2, cfg=1.0)
    assert out.isfinite().all()
    video = F * N - (N if variant == "v2" else 0)  # v2's guiding frame is in the prefix
    extra = prefix - (N if variant == "v2" else 0)  # tokens the unpatched model has besides the F*N video tokens
    rows = {}
    for e in log:
        rows.setdefault((e["kind"], e["index"]), set()).add(e["rows"])
    txt = {e["txt"] for e in log if e["kind"] == "double_block"}
    assert txt == {T}  # double blocks always get the whole prompt
    assert rows[("double_block", 0)] == {F * N + extra}  # the first selection's scoring block runs dense
    # a later reselection block prunes with the default random score (a draw needs no scores): its own new kept set
    assert rows[("single_block", 0)] == {prefix + video // 2 + T}
    assert rows[("double_block", 1)] == {prefix + video // 2}  # half of the prunable video, all protected rows
    assert rows[("single_block", 1)] == {prefix + video // 2 + T}  # ... and all text rows
    if variant == "v2":  # frame 0's own modulation: vec [B, 2, C], ranges from row 0 still right on kept rows
        pruned = [e for e in log if e["index"] == 1]
        assert all(e["vec"][1] == 2 and e["mod"] == [(0, N, 0), (N, None, 1)] for e in pruned)
    stats = tape_summaries()[-1]
    assert len(stats.steps_pruned) == 2 and stats.kept_fracs == [0.5, 0.5] and 0 < stats.flops_saved < 0.5


# ---- (d) cond and uncond share one kept set; CFG 1 runs cond only ------------------------------------------------
def _video_pe(e, prefix, k):
    return e["pe"][:, :, prefix : prefix + k]  # pe [B, 1, rows, ...]: the kept video rows' rope


def test_cond_uncond_share_kept_set_in_one_batch_and_cfg_1(hy):
    model, pos, neg, lat = setup(hy, "t2v")
    log = []
    sample(patch(spy_blocks(model, log), keep=0.5), lat, pos, neg, steps=2, cfg=3.0)
    pruned = [e for e in log if e["index"] == 1]
    assert pruned and all(e["batch"] == 2 and set(e["chunks"]) == {0, 1} for e in pruned)
    for e in pruned:  # one kept set for both rows: the same rope rows
        pe = _video_pe(e, 0, F * N // 2)
        assert torch.equal(pe[0], pe[1])
    log.clear()
    out = sample(patch(spy_blocks(model, log), keep=0.5), lat, pos, neg, steps=2, cfg=1.0)
    pruned = [e for e in log if e["index"] == 1]
    assert out.isfinite().all() and pruned and all(e["batch"] == 1 and e["chunks"] == (0,) for e in pruned)
    assert {e["rows"] for e in pruned if e["kind"] == "double_block"} == {F * N // 2}


@pytest.mark.parametrize("variant", ["t2v", "custom"])
def test_cond_uncond_share_kept_set_across_two_calls(hy, variant):
    """Prompts of 8 and 5 tokens cannot share a batch: cond and uncond run as two calls at each step (custom: the
    uncond rows also have no ref_latent prefix). Both calls keep the same video tokens."""
    model, pos, neg, lat = setup(hy, variant, neg_tokens=5)
    prefix = N if variant == "custom" else 0
    log = []
    sample(patch(spy_blocks(model, log), keep=0.5), lat, pos, neg, steps=2, cfg=3.0)
    pruned = [e for e in log if e["kind"] == "double_block" and e["index"] == 1]
    assert pruned and all(e["batch"] == 1 for e in pruned)
    by_sigma = {}
    for e in pruned:
        p = prefix if e["chunks"] == (0,) else 0
        assert e["rows"] == p + F * N // 2
        by_sigma.setdefault(e["sigma"], {})[e["chunks"][0]] = _video_pe(e, p, F * N // 2)
    assert len(by_sigma) == 2
    for s, pes in by_sigma.items():
        assert set(pes) == {0, 1} and torch.equal(pes[0], pes[1]), s


# ---- (e) refusals ----------------------------------------------------------------------------------------------
def test_hunyuan_image_21_is_refused_naming_the_model(hy):
    """HunyuanImage 2.1 loads into the same HunyuanVideo class (2-D patch, no vector_in)."""
    folder, _ = hy
    model = load_unet(write_hunyuan_checkpoint(folder, "image21", hidden=128, double=1, single=1, context_dim=64))
    assert type(model.model).__name__ == "HunyuanImage21"
    assert type(model.model.diffusion_model).__name__ == "HunyuanVideo"
    with pytest.raises(ValueError, match=r"^TAPE Patch Model: model: TAPE does not support HunyuanImage 2\.1"):
        patch(model)
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.tape_core import TapeConfig

    with pytest.raises(ValueError, match=r"^model: TAPE does not support HunyuanImage 2\.1"):
        apply_tape(model, TapeConfig())


def test_hunyuan_image_21_refiner_is_refused_naming_the_model(hy):
    """The HunyuanImage 2.1 refiner also runs in the HunyuanVideo class, with a 3-D patch [1, 1, 1] on a 5-D latent
    and no vector_in: a patch of 3 entries does not make it a video model."""
    folder, _ = hy
    name = write_hunyuan_checkpoint(folder, "image21_refiner", hidden=128, double=1, single=1, context_dim=64)
    model = load_unet(name)
    assert type(model.model).__name__ == "HunyuanImage21Refiner"
    with pytest.raises(ValueError, match=r"HunyuanImage 2\.1"):
        patch(model)
