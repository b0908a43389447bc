"""How a run starts: a dense warm-up step from noise, a light one (resume_keep) when the sampler resumes a partly
denoised latent (the second KSamplerAdvanced of a two-stage graph, denoise < 1), warmup_keep; block 0 pruned on
request with the random draw (never with a scored selection); and the memory TAPE holds per span (one span's
gathered arguments at a time, no full-size temporaries for the cache)."""

import gc
import logging
import weakref

import pytest
import torch
from comfy_harness import load_unet, spy_blocks, tape_patch, text_cond
from comfyui_tape.integration.runtime import CallPlan
from comfyui_tape.nodes.patch_nodes import TAPEBudgetSchedule, TAPELayerReselect
from comfyui_tape.tape_core import BudgetSchedule
from comfyui_tape.tape_core.cache import ResidualCache

pytestmark = pytest.mark.usefixtures("one_thread")
TOKENS = 4 * 8 * 8 // 4  # 4 latent frames of 8 x 8 -> 4 x (4 x 4) tokens


def ksampler(model, steps=3, denoise=1.0, scheduler="simple"):
    import nodes  # ComfyUI's (imported by conftest before this package's nodes/ could shadow it)

    lat = {"samples": torch.zeros(1, 16, 4, 8, 8)}
    pos, neg = text_cond(8, 1), text_cond(8, 2)
    out = nodes.common_ksampler(model, 0, steps, 3.0, "euler", scheduler, pos, neg, lat, denoise=denoise)
    return out[0]["samples"]


def two_stage(model_1, model_2, steps=4, split=2):
    """The Wan 2.2 A14B template's stages, as nodes.KSamplerAdvanced runs them."""
    import nodes

    lat = {"samples": torch.zeros(1, 16, 4, 8, 8)}
    pos, neg = text_cond(8, 1), text_cond(8, 2)
    ksa = nodes.KSamplerAdvanced()
    (first,) = ksa.sample(model_1, "enable", 0, steps, 3.0, "euler", "simple", pos, neg, lat, 0, split, "enable")
    (out,) = ksa.sample(model_2, "disable", 0, steps, 3.0, "euler", "simple", pos, neg, first, split, steps, "disable")
    return out["samples"]


def rows_per_step(log, block):
    """Rows block `block` received per model call (cond and uncond run as one batch here: one call a step)."""
    return [e["rows"] for e in log if e["index"] == block]


def test_the_second_stage_warms_up_lightly_and_the_first_starts_dense(wan_models, caplog):
    caplog.set_level(logging.INFO, logger="TAPE")
    model = load_unet(wan_models["t2v"])
    log_1, log_2 = [], []
    out = two_stage(
        tape_patch(spy_blocks(model, log_1), mode="reuse"), tape_patch(spy_blocks(model, log_2), mode="reuse")
    )
    assert out.isfinite().all()
    # stage 1 starts from noise: a dense warm-up step, then keep 0.5 (a single pruned step gets the base ratio);
    # stage 2 resumes stage 1's latent: warm-up at keep 0.75 (12 of 16 tokens a frame), then 0.5
    assert rows_per_step(log_1, 1) == [TOKENS, TOKENS // 2]
    assert rows_per_step(log_2, 1) == [TOKENS * 3 // 4, TOKENS // 2]
    assert rows_per_step(log_2, 0) == [TOKENS, TOKENS]  # block 0 stays dense (the first selection's block)
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TAPE: pruned")]
    assert "resumed" not in summaries[-2] and "resumed a partly denoised latent: warm-up at keep 0.75" in summaries[-1]


def test_denoise_below_1_resumes_and_the_keeps_are_settable(wan_models):
    model = load_unet(wan_models["t2v"])
    log = []
    ksampler(tape_patch(spy_blocks(model, log), mode="reuse"), denoise=0.6)
    assert rows_per_step(log, 1)[0] == TOKENS * 3 // 4
    log = []  # a fresh run whose scheduler starts a little below the highest noise (0.98 of it) is not resumed
    ksampler(tape_patch(spy_blocks(model, log), mode="reuse"), steps=20, scheduler="ddim_uniform")
    assert rows_per_step(log, 1)[0] == TOKENS
    # warmup_keep (fresh runs) and resume_keep (resumed runs) from TAPE Budget Schedule
    light = TAPEBudgetSchedule.execute("linear", 0.2, 1, 0, "", 0.75, 1.0).result[0]
    log = []
    ksampler(tape_patch(spy_blocks(model, log), mode="reuse", schedule=light))
    assert rows_per_step(log, 1)[0] == TOKENS * 3 // 4
    log = []
    ksampler(tape_patch(spy_blocks(model, log), mode="reuse", schedule=light), denoise=0.6)
    assert rows_per_step(log, 1)[0] == TOKENS
    with pytest.raises(ValueError, match=r"TAPE Budget Schedule: resume_keep must be in \[0.05, 1\], got 0.0"):
        TAPEBudgetSchedule.execute("linear", 0.2, 1, 0, "", 1.0, 0.0)
    assert BudgetSchedule().ratios(4, 0.5) == [1.0, 0.3, 0.5, 0.7]
    assert BudgetSchedule().ratios(4, 0.5, resumed=True) == [0.75, 0.3, 0.5, 0.7]
    assert BudgetSchedule(warmup_steps=0).ratios(2, 0.5, resumed=True) == [0.3, 0.7]  # no warm-up: unchanged


def test_block_0_prunes_on_request_with_the_random_draw_only(wan_models):
    model = load_unet(wan_models["t2v"])
    no_warmup = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=0)
    every2_from_0 = TAPELayerReselect.execute(2, "", 0, 0).result[0]
    log = []
    out = ksampler(tape_patch(spy_blocks(model, log), schedule=no_warmup, reselect=every2_from_0), steps=2)
    assert out.isfinite().all()
    assert {e["rows"] for e in log} == {TOKENS // 2}  # every block, block 0 included, on half the tokens
    log = []
    ksampler(tape_patch(spy_blocks(model, log), score="attention", schedule=no_warmup, reselect=every2_from_0), steps=2)
    assert rows_per_step(log, 0) == [TOKENS, TOKENS]  # scores come from a dense block
    assert rows_per_step(log, 1) == [TOKENS // 2, TOKENS // 2]


def test_span_cache_holds_one_span_at_a_time():
    class Rows:
        def __init__(self, key):
            self.key = key

    call = CallPlan(None, "prune", 0.0)
    first = torch.zeros(4)
    call.span_cache(Rows((0, 64)))["pe"] = first
    assert call.span_cache(Rows((0, 64)))["pe"] is first  # the same span: kept
    ref = weakref.ref(first)
    del first
    assert "pe" not in call.span_cache(Rows((1, 64)))  # a new span: the previous span's copies are dropped
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("fmt", ["fp8", "bf16"])
def test_cache_made_piecewise_equals_the_cache_of_the_whole(fmt, monkeypatch):
    monkeypatch.setattr("comfyui_tape.tape_core.cache.CHUNK_ROWS", 7)  # several pieces, a ragged last one
    g = torch.Generator().manual_seed(0)
    y, x = torch.randn(2, 20, 16, generator=g), torch.randn(2, 20, 16, generator=g)
    whole = ResidualCache(y - x, fmt).decode("cpu", torch.float32)
    assert torch.equal(ResidualCache.from_difference(y, x, fmt).decode("cpu", torch.float32), whole)
    assert torch.equal(
        ResidualCache.zeros((2, 20, 16), fmt, "cpu").decode("cpu", torch.float32), torch.zeros(2, 20, 16)
    )
