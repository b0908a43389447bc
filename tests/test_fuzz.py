"""Bad input, fuzzed (hypothesis): every node input and latent shape gives a valid video or a ValueError that names
the node and the input; never a crash inside torch, never a silently different video."""

import re

import torch
from comfy_harness import load_unet, sample
from comfyui_tape.nodes.patch_nodes import TAPEAdvancedOptions, TAPEBudgetSchedule, TAPELayerReselect, TAPEPatchModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wan import conds

NODE_ERROR = re.compile(r"^TAPE (Patch Model|Budget Schedule|Layer Reselect|Advanced Options): [a-z_ ]+")
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
text = st.text(alphabet=st.sampled_from(list("0123456789.,- eE+abc\t")), max_size=24)


def named_error_or_value(fn, *args):
    try:
        return fn(*args).result[0]
    except ValueError as e:
        assert NODE_ERROR.match(str(e)), str(e)
        return None


@FAST
@given(preset=st.sampled_from(["constant", "linear", "cosine", "step", "custom"]), spread=st.floats(-1, 2), ratios=text)
def test_budget_schedule_inputs(preset, spread, ratios):
    sched = named_error_or_value(TAPEBudgetSchedule.execute, preset, spread, 1, 0, ratios)
    if sched is not None:
        r = sched.ratios(12, 0.5)
        assert all(0 < x <= 1 for x in r)


@FAST
@given(every=st.integers(-3, 50), blocks=text, first=st.integers(-2, 6), last=st.integers(-2, 6))
def test_layer_reselect_inputs(every, blocks, first, last):
    policy = named_error_or_value(TAPELayerReselect.execute, every, blocks, first, last)
    if policy is not None:
        assert policy.every == every and policy.dense_first == first


@FAST
@given(
    smoothing=st.floats(-0.5, 1.5),
    rotation=st.floats(-1, 200),
    start=st.floats(-0.5, 1.5),
    end=st.floats(-0.5, 1.5),
    mode=st.sampled_from(["reuse", "nearest", "skip", "bogus"]),
)
def test_advanced_options_inputs(smoothing, rotation, start, end, mode):
    options = named_error_or_value(TAPEAdvancedOptions.execute, "random", smoothing, rotation, mode, "gpu", start, end)
    if options is not None:
        assert options["pruned_mode"] == mode and options["start_percent"] == start


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    keep=st.floats(-0.5, 1.5),
    frames=st.integers(1, 5),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    blocks=st.sampled_from(["", "0, 2", "0 1 2 3", "3", "5"]),
)
def test_patch_model_on_any_latent_shape(wan_models, keep, frames, h, w, blocks):
    """Any keep ratio and latent size (1..5 frames, odd sizes): a video of the input's shape, finite, or a named
    error; TAPE off (keep 1) is the unpatched output bit for bit."""
    model = load_unet(wan_models["t2v"])
    pos, neg = conds()
    lat = {"samples": torch.zeros(1, 16, frames, h, w)}
    reselect = TAPELayerReselect.execute(2, blocks, 1, 0).result[0]
    m = named_error_or_value(TAPEPatchModel.execute, model, keep, True, None, reselect)
    if m is None:
        return
    out = sample(m, lat, pos, neg, steps=2)
    assert out.shape == lat["samples"].shape and torch.isfinite(out).all()
    if keep >= 1.0:
        assert torch.equal(out, sample(model, lat, pos, neg, steps=2))
