"""TAPE with the nodes and settings users combine it with (README, "Compatibility"): tiny random Wan checkpoints
through ComfyUI's own loaders, nodes and samplers, on CPU. Each case checks that the run completes with a finite
video, that TAPE really pruned (its end-of-run summary), and where it matters, what the other node relies on."""

import logging

import pytest
import torch
from comfy_harness import load_unet, sample
from comfyui_tape.integration.patcher import apply_tape
from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy, TapeConfig
from test_wan import conds, latent

WARM = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1)
EVERY2 = ReselectPolicy(every=2)


def tape(model, **kw):
    return apply_tape(model, TapeConfig(**{"schedule": WARM, "reselect": EVERY2, **kw}))


def pruned_steps(tape_summaries, n_before: int) -> list[int]:
    return [len(s.steps_pruned) for s in tape_summaries()[n_before:]]


@pytest.fixture(scope="module")
def model(wan_models):
    return load_unet(wan_models["t2v"])


@pytest.mark.parametrize("sampler, steps", [("euler", 2), ("heun", 3), ("dpmpp_2m", 5), ("uni_pc", 8), ("euler", 50)])
def test_samplers_and_step_counts(model, tape_summaries, sampler, steps):
    pos, neg = conds()
    n = len(tape_summaries())
    out = sample(tape(model), latent(frames=2, h=4, w=4), pos, neg, steps=steps, sampler=sampler)
    assert torch.isfinite(out).all()
    assert pruned_steps(tape_summaries, n) == [steps - 1]  # every step but the warm-up, heun's 2 calls counted once


@pytest.mark.parametrize("batch, cfg", [(1, 1.0), (2, 3.0), (3, 1.0)])
def test_batches_and_cfg_1(model, tape_summaries, batch, cfg):
    pos, neg = conds(batch=batch)
    n = len(tape_summaries())
    out = sample(tape(model), latent(batch=batch), pos, neg, steps=3, cfg=cfg)
    assert out.shape[0] == batch and torch.isfinite(out).all()
    assert pruned_steps(tape_summaries, n) == [2]


def test_denoise_below_one_and_ksampler_advanced_stages(model, tape_summaries):
    """img2img-style denoise 0.6 and the Wan 2.2 two-stage graph (KSamplerAdvanced steps 0-2, then 2-4 on a second
    TAPE-patched model): each stage is its own run with its own warm-up step, dense from noise, light (resume_keep)
    on a partly denoised latent."""
    import nodes

    pos, neg = conds()
    lat = latent()
    n = len(tape_summaries())
    out = nodes.common_ksampler(tape(model), 0, 5, 3.0, "euler", "simple", pos, neg, lat, denoise=0.6)[0]["samples"]
    # a resumed latent: the warm-up step prunes lightly (resume_keep), so every step prunes
    assert torch.isfinite(out).all() and pruned_steps(tape_summaries, n) == [5]
    adv = nodes.KSamplerAdvanced()
    n = len(tape_summaries())
    first = adv.sample(tape(model), "enable", 0, 4, 1.0, "euler", "simple", pos, neg, lat, 0, 2, "enable")[0]
    second = adv.sample(tape(model), "disable", 0, 4, 1.0, "euler", "simple", pos, neg, first, 2, 4, "disable")[0]
    assert torch.isfinite(second["samples"]).all()
    assert pruned_steps(tape_summaries, n) == [1, 2]  # stage 1 from noise: a dense warm-up; stage 2 resumes


def test_model_sampling_shift_and_lora_weights(model, tape_summaries):
    """ModelSamplingSD3 (shift) after TAPE, and a LoRA-style weight patch before it: both apply to the pruned run
    (the patched weight changes the output; TAPE still prunes)."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    pos, neg = conds()
    shifted = ModelSamplingSD3().patch(tape(model), 5.0)[0]
    n = len(tape_summaries())
    assert torch.isfinite(sample(shifted, latent(), pos, neg, steps=3)).all()
    assert pruned_steps(tape_summaries, n) == [2]
    lora = model.clone()
    key = "diffusion_model.blocks.1.self_attn.q.weight"
    w = lora.model.state_dict()[key]
    lora.add_patches({key: (torch.randn_like(w) * 0.5,)}, 1.0)
    plain = sample(tape(model), latent(), pos, neg, steps=3)
    patched = sample(tape(lora), latent(), pos, neg, steps=3)
    assert torch.isfinite(patched).all() and not torch.equal(plain, patched)


def test_easycache_stacks_with_tape(model, tape_summaries, caplog):
    """EasyCache on top of TAPE and TAPE on top of EasyCache: both run, TAPE prunes the steps EasyCache computes.
    Steps EasyCache skips are neither pruned nor mistaken for a forward that bypasses TAPE (threshold 1 makes it
    skip on this random model)."""
    from comfy_extras.nodes_easycache import EasyCacheNode

    caplog.set_level(logging.INFO)
    pos, neg = conds()
    for m in (
        EasyCacheNode.execute(tape(model), 1.0, 0.15, 0.95, False).result[0],
        tape(EasyCacheNode.execute(model, 1.0, 0.15, 0.95, False).result[0]),
    ):
        caplog.clear()
        n = len(tape_summaries())
        assert torch.isfinite(sample(m, latent(), pos, neg, steps=8)).all()
        (pruned,) = pruned_steps(tape_summaries, n)
        skipped = [r.getMessage() for r in caplog.records if "EasyCache - skipped" in r.getMessage()]
        assert skipped and "skipped 0/" not in skipped[-1], skipped
        assert 1 <= pruned < 7, pruned  # 8 steps, 1 dense warm-up, EasyCache skipped some of the rest
        assert not [r for r in caplog.records if "did not run" in r.getMessage()]


def test_skip_layer_guidance_runs_its_extra_pass_on_tape(model, tape_summaries):
    """SkipLayerGuidanceDiT installs its own block replaces on a copy of model_options for its extra pass; TAPE's
    replaces on the other blocks keep working and the guided run completes."""
    from comfy_extras.nodes_slg import SkipLayerGuidanceDiT

    pos, neg = conds()
    slg = SkipLayerGuidanceDiT.execute(tape(model), 3.0, 0.0, 1.0, "2", "").result[0]
    n = len(tape_summaries())
    assert torch.isfinite(sample(slg, latent(), pos, neg, steps=3)).all()
    assert pruned_steps(tape_summaries, n) == [2]


def test_attention_override_is_chained_not_replaced(model, tape_summaries):
    """An attention override like the ones Sage-attention nodes install keeps running inside TAPE's scoring blocks
    and pruned blocks, and is back in place after TAPE's scoring call."""
    calls = []

    def sage_like(func, *args, **kwargs):
        calls.append(args[0].shape)
        return func(*args, **kwargs)

    m = model.clone()
    m.model_options["transformer_options"]["optimized_attention_override"] = sage_like
    pos, neg = conds()
    no_warmup = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=0)  # dense = scoring blocks only
    sample(tape(m, score="attention", schedule=no_warmup), latent(), pos, neg, steps=3)
    dense, pruned = 4 * 4 * 4, 4 * 4 * 4 // 2  # 4 frames of 4x4 tokens (patch 2x2)
    seq = {s[1] if len(s) == 3 else s[2] for s in calls}  # [B, L, C] or [B, H, L, D] (skip_reshape)
    assert dense in seq and pruned in seq, seq  # the scoring blocks and the pruned blocks both ran through it
    assert m.model_options["transformer_options"]["optimized_attention_override"] is sage_like


def test_other_resolution_and_an_interrupted_run_leave_no_state(model):
    """The same patched model at another latent size, and after a run that raised mid-sampling: the next run equals
    a fresh run's output (nothing carried over between runs)."""
    m = tape(model)
    pos, neg = conds()
    ref_small = sample(m, latent(frames=2, h=4, w=4), pos, neg, steps=3)
    sample(m, latent(frames=4, h=8, w=8), pos, neg, steps=3)

    def boom(step, x0, x, total):
        if step == 1:
            raise RuntimeError("interrupted")

    import comfy.sample

    lat = latent(frames=2, h=4, w=4)["samples"]
    noise = comfy.sample.prepare_noise(lat, 0)
    with pytest.raises(RuntimeError, match="interrupted"):
        comfy.sample.sample(m, noise, 3, 3.0, "euler", "simple", pos, neg, lat, callback=boom, disable_pbar=True)
    assert torch.equal(sample(m, latent(frames=2, h=4, w=4), pos, neg, steps=3), ref_small)


def test_fifty_runs_leave_nothing_behind(model):
    """50 sampling runs in a loop: no TapeRun (selections, ages, reuse cache) outlives its run, and memory does not
    grow run after run."""
    import gc
    import resource

    from comfyui_tape.integration.runtime import TapeRun

    m = tape(model)
    pos, neg = conds()
    lat = latent(frames=2, h=4, w=4)
    for _ in range(5):
        sample(m, lat, pos, neg, steps=2)
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; a peak, so growth shows as a new peak
    for _ in range(50):
        sample(m, lat, pos, neg, steps=2)
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is TapeRun]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 50 * 1024


def test_a_node_that_replaces_the_forward_is_named_not_silently_ignored(model, tape_summaries, caplog):
    """Packs like ComfyUI-TeaCache replace the model's forward_orig (an object patch) with their own copy that does
    not look up ComfyUI's block patches. TAPE then cannot act: it must say so and not report pruned steps."""
    from comfy.ldm.wan.model import WanModel

    dm = model.model.diffusion_model

    def forward_without_block_patches(*args, **kwargs):
        to = dict(kwargs.get("transformer_options", {}))
        to.pop("patches_replace", None)
        return WanModel.forward_orig(dm, *args, **{**kwargs, "transformer_options": to})

    teacache_like = model.clone()
    teacache_like.add_object_patch("diffusion_model.forward_orig", forward_without_block_patches)
    pos, neg = conds()
    n = len(tape_summaries())
    sample(tape(teacache_like), latent(), pos, neg, steps=3)
    assert pruned_steps(tape_summaries, n) == [0]
    assert any(
        "block patches did not run" in r.getMessage() and "forward_orig" in r.getMessage() for r in caplog.records
    )


def test_settings_that_prune_nothing_are_warned_about(model, tape_summaries, caplog):
    """A 2-step run with a dense warm-up step and a dense last step prunes nothing: say so, and why."""
    pos, neg = conds()
    m = tape(model, schedule=BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1, dense_last_steps=1))
    sample(m, latent(), pos, neg, steps=2)
    assert any("pruned nothing in this run" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
