"""TAPE on ComfyUI's native Wan models: tiny random checkpoints loaded through UNETLoader, sampled through
KSampler, on CPU."""

import copy

import pytest
import torch
from comfy_harness import load_unet, sample, tape_patch, text_cond
from comfyui_tape.integration import runtime
from comfyui_tape.nodes.patch_nodes import TAPEBudgetSchedule, TAPELayerReselect
from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy

LATENT_CH = {"t2v": 16, "i2v": 16, "ti2v5b": 48}
EVERY2 = ReselectPolicy(every=2)  # 4 blocks: S p S p
NO_WARMUP = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=0)


def patch(
    model, keep=0.5, mode="skip", start=0.0, end=1.0, enabled=True, schedule=NO_WARMUP, reselect=EVERY2, smoothing=0.5
):
    return tape_patch(model, keep, mode, "random", schedule, reselect, enabled, start, end, smoothing)


def latent(kind="t2v", batch=1, frames=4, h=8, w=8, mask=False):
    lat = {"samples": torch.zeros(batch, LATENT_CH[kind], frames, h, w)}
    if mask:  # Wan 2.2 TI2V: first frame kept -> per-frame timesteps -> per-frame modulation vec [B, F, 6, C]
        m = torch.ones(batch, 1, frames, h, w)
        m[:, :, 0] = 0.0
        lat["noise_mask"] = m
        lat["samples"] = torch.randn(batch, LATENT_CH[kind], frames, h, w, generator=torch.Generator().manual_seed(3))
    return lat


def conds(pos_tokens=8, neg_tokens=8, batch=1):
    return text_cond(pos_tokens, 1, batch), text_cond(neg_tokens, 2, batch)


class BlockSpy:
    """A pre-existing block replace (what another node pack would install): TAPE must chain it and hand it
    the pruned tokens. Records what each block call receives."""

    def __init__(self, index, log):
        self.index, self.log = index, log

    def __deepcopy__(self, memo):  # ModelPatcher.clone deep-copies model_options; keep recording into `log`
        return self

    def __call__(self, args, extra):
        t = args["transformer_options"]
        entry = dict(
            block=self.index,
            tokens=args["img"].shape[1],
            batch=args["img"].shape[0],
            img=args["img"].clone(),
            sigma=float(t["sigmas"][0]),
            chunks=tuple(t["cond_or_uncond"]),
            pe=args["pe"].clone(),
        )
        self.log.append(entry)
        out = extra["original_block"](args)
        entry["out"] = out["img"].clone()
        return out


def spied(model, log):
    m = model.clone()
    for i in range(len(m.model.diffusion_model.blocks)):
        m.set_model_patch_replace(BlockSpy(i, log), "dit", "double_block", i)
    return m


# ---- bit-identical when TAPE must do nothing ---------------------------------------------------------------
def test_off_paths_are_bit_identical_and_input_untouched(wan_models, tape_summaries):
    model = load_unet(wan_models["t2v"])
    before = copy.deepcopy(model.model_options)
    pos, neg = conds()
    ref = sample(model, latent(), pos, neg)
    for kw in (dict(enabled=False), dict(keep=1.0), dict(start=0.99, end=1.0)):
        out = sample(patch(model, **kw), latent(), pos, neg)
        assert torch.equal(out, ref), kw
    # patched, but no step falls inside start/end: the block patches pass through
    out = sample(patch(model, start=0.3, end=0.31), latent(), pos, neg)
    assert torch.equal(out, ref) and not tape_summaries()[-1].steps_seen
    # every step a dense warm-up step in reuse mode: the patches record residuals but change nothing
    out = sample(patch(model, mode="reuse", schedule=BudgetSchedule(warmup_steps=100)), latent(), pos, neg)
    assert torch.equal(out, ref) and len(tape_summaries()[-1].steps_seen) == 4
    assert model.model_options == before  # the input ModelPatcher is never modified
    assert patch(model, enabled=False) is model


# ---- gather-all / scatter-all in a permuted order reproduces the model ---------------------------------------
@pytest.mark.parametrize("kind,mask", [("t2v", False), ("i2v", False), ("ti2v5b", True)])
@pytest.mark.parametrize("mode", ["skip", "reuse"])
def test_permuted_full_selection_reproduces_block_outputs(wan_models, monkeypatch, kind, mask, mode):
    model = load_unet(wan_models[kind])
    pos, neg = conds()
    lat = latent(kind, mask=mask)
    ref = sample(model, lat, pos, neg, steps=3)

    def permuted_all(self, scores, call, span=0):
        b, n = call.videos, scores.shape[1]
        g = torch.Generator().manual_seed(int(call.sigma * 1000))
        kept = torch.stack([torch.randperm(n, generator=g) for _ in range(b)])
        return runtime.Selection(call.sigma, kept, frame_major=False, layout=(call.grid, call.n_prefix))

    monkeypatch.setattr(runtime.TapeRun, "select", permuted_all)
    out = sample(patch(model, mode=mode), lat, pos, neg, steps=3)
    err = (out - ref).abs().max() / ref.abs().max()
    print(f"{kind} {mode} rel err {err:.2e}")
    assert err <= 1e-6


def test_per_frame_modulation_fast_path_matches_expanded_gather(wan_models, monkeypatch):
    """Wan 2.2 TI2V with a noise mask: passing vec [B,F,6,C] unchanged to a block of k tokens per frame must
    equal expanding it per token and gathering (the silent-mismatch trap)."""
    model = load_unet(wan_models["ti2v5b"])
    pos, neg = conds()
    lat = latent("ti2v5b", mask=True)
    fast = sample(patch(model, keep=0.5), lat, pos, neg, steps=3)
    select = runtime.TapeRun.select

    def general(self, scores, call, span=0):
        sel = select(self, scores, call, span)
        return runtime.Selection(sel.step_key, sel.kept, frame_major=False, layout=sel.layout)

    monkeypatch.setattr(runtime.TapeRun, "select", general)
    slow = sample(patch(model, keep=0.5), lat, pos, neg, steps=3)
    assert torch.allclose(fast, slow, atol=1e-6)


# ---- pruning really happens ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["skip", "nearest", "reuse"])
def test_keep_half_halves_the_tokens_blocks_receive(wan_models, tape_summaries, mode):
    model = load_unet(wan_models["t2v"])
    log = []
    pos, neg = conds()
    lat = latent(frames=4, h=8, w=8)  # 4 frames x (4 x 4) tokens
    ref = sample(spied(model, []), lat, pos, neg, steps=4)
    out = sample(patch(spied(model, log), keep=0.5, mode=mode), lat, pos, neg, steps=4)
    # random score (the default): block 2 reselects without running dense (a random draw needs no scores)
    pruned = [e["tokens"] for e in log if e["block"] in (1, 2, 3)]
    scored = [e["tokens"] for e in log if e["block"] == 0]
    assert pruned and set(pruned) == {4 * 8}, pruned  # 8 of 16 tokens in each of 4 frames
    assert set(scored) == {64}
    assert out.isfinite().all() and not torch.equal(out, ref)
    stats = tape_summaries()[-1]
    assert len(stats.steps_pruned) == 4 and stats.kept_fracs == [0.5] * 4 and 0 < stats.flops_saved < 0.5


def test_odd_latent_sizes_batch_and_warmup(wan_models):
    model = load_unet(wan_models["t2v"])
    log = []
    pos, neg = conds(batch=2)
    lat = latent(batch=2, frames=3, h=7, w=9)  # ComfyUI pads to 8 x 10 -> 4 x 5 tokens per frame
    out = sample(patch(spied(model, log), keep=0.4, mode="reuse", schedule=BudgetSchedule()), lat, pos, neg, steps=4)
    assert out.shape == (2, 16, 3, 7, 9) and out.isfinite().all()
    first_sigma = max(e["sigma"] for e in log)
    assert {e["tokens"] for e in log if e["block"] == 1 and e["sigma"] == first_sigma} == {60}  # dense warm-up
    pruned = {e["tokens"] for e in log if e["block"] == 1 and e["sigma"] < first_sigma}
    assert pruned and all(t < 60 and t % 3 == 0 for t in pruned)
    assert {e["batch"] for e in log} == {4}  # 2 videos x (cond, uncond) in one batch


# ---- cond and uncond share the kept set --------------------------------------------------------------------
def test_cond_uncond_share_kept_set_in_one_batch(wan_models):
    model = load_unet(wan_models["t2v"])
    log = []
    pos, neg = conds(8, 8)
    sample(patch(spied(model, log)), latent(), pos, neg, steps=3)
    pruned = [e for e in log if e["block"] == 1]
    assert pruned and all(e["chunks"] in ((0, 1), (1, 0)) and e["batch"] == 2 for e in pruned)
    assert all(e["pe"].shape[0] == 1 for e in pruned)  # one set of rope rows = one kept set for both rows


def test_cond_uncond_share_kept_set_across_two_calls(wan_models):
    model = load_unet(wan_models["t2v"])
    log = []
    pos, neg = conds(7, 11)  # lcm 77: ComfyUI cannot batch them, cond and uncond run as two calls
    sample(patch(spied(model, log)), latent(), pos, neg, steps=3)
    pruned = [e for e in log if e["block"] == 3]
    assert pruned and all(len(e["chunks"]) == 1 and e["batch"] == 1 for e in pruned)
    by_sigma = {}
    for e in pruned:
        by_sigma.setdefault(e["sigma"], {})[e["chunks"][0]] = e["pe"]
    assert len(by_sigma) == 3
    for s, pes in by_sigma.items():
        assert set(pes) == {0, 1} and torch.equal(pes[0], pes[1]), s


# ---- inputs and models TAPE must refuse ---------------------------------------------------------------------
def test_bad_inputs_are_named(wan_models):
    model = load_unet(wan_models["t2v"])
    with pytest.raises(ValueError, match=r"^TAPE Patch Model: keep_ratio must be in \(0, 1\]"):
        patch(model, keep=0.0)
    with pytest.raises(ValueError, match="start_percent .* must not be greater than end_percent"):
        patch(model, start=0.7, end=0.3)
    bad = TAPELayerReselect.execute(10, "0, 2, 9", 1, 0).result[0]
    with pytest.raises(
        ValueError,
        match=r"^TAPE Patch Model: the reselect input \(from TAPE Layer Reselect\): reselect_blocks \[9\] do not "
        r"exist: this model has 4 blocks \(0-3\)",
    ):
        patch(model, reselect=bad)
    with pytest.raises(ValueError, match="^TAPE Budget Schedule: custom_ratios"):
        TAPEBudgetSchedule.execute("custom", 0.2, 1, 0, "0.5, 2")


def _tiny_model(config_cls, unet_config):
    import comfy.model_patcher

    cfg = config_cls(unet_config)
    m = cfg.get_model({})
    return comfy.model_patcher.ModelPatcher(m, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def test_image_model_is_refused():
    import comfy.supported_models as sm

    flux = _tiny_model(
        sm.Flux,
        dict(
            image_model="flux",
            in_channels=16,
            out_channels=16,
            vec_in_dim=32,
            context_in_dim=32,
            hidden_size=64,
            mlp_ratio=2.0,
            num_heads=2,
            depth=1,
            depth_single_blocks=1,
            axes_dim=[8, 12, 12],
            theta=10000,
            patch_size=2,
            qkv_bias=True,
            guidance_embed=False,
        ),
    )
    with pytest.raises(ValueError, match="model: TAPE does not support 'Flux'"):
        patch(flux)


def test_unsupported_wan_variant_is_refused():
    import comfy.supported_models as sm

    vace = _tiny_model(
        sm.WAN21_Vace,
        dict(
            image_model="wan2.1",
            model_type="vace",
            dim=128,
            ffn_dim=256,
            num_heads=1,
            num_layers=2,
            in_dim=16,
            out_dim=16,
            vace_layers=1,
            vace_in_dim=96,
        ),
    )
    with pytest.raises(ValueError, match="does not support VaceWanModel yet"):
        patch(vace)


def test_rotation_brings_every_pruned_token_back(wan_models, monkeypatch):
    """With rotation, every token left out at one step is computed within a few steps; with rotation 0 (the paper's
    pure ranking) much the same positions stay pruned step after step."""
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.tape_core import TapeConfig

    model = load_unet(wan_models["t2v"])
    pos, neg = conds()
    select = runtime.TapeRun.select

    def covered(rotation):
        seen = []

        def recording(self, scores, call, span=0):
            sel = select(self, scores, call, span)
            if span == 0:
                seen.append(sel.kept[0])
            return sel

        monkeypatch.setattr(runtime.TapeRun, "select", recording)
        cfg = TapeConfig(
            keep_ratio=0.25,
            score="attention",
            pruned_mode="skip",
            rotation=rotation,
            schedule=NO_WARMUP,
            reselect=EVERY2,
        )
        sample(apply_tape(model, cfg), latent(), pos, neg, steps=6)
        assert len(seen) == 6
        return len(set(torch.cat(seen).tolist()))

    assert covered(1.0) == 4 * 16  # every token of the 4 frames x 16 positions computed within 6 steps
    assert covered(0.0) < 4 * 16 - 8


def test_nearest_mode_gives_pruned_tokens_their_neighbours_update(wan_models):
    """skip leaves pruned tokens unchanged through a pruned block; nearest adds the update of the nearest kept
    token. Between block 0 (dense, scores) and block 2 (dense) only block 1 runs, pruned: in skip mode half of the
    tokens arrive at block 2 exactly as block 0 left them; in nearest mode every token has moved."""
    model = load_unet(wan_models["t2v"])
    pos, neg = conds()
    unchanged = {}
    for mode in ("skip", "nearest"):
        log = []
        dense_2_3 = ReselectPolicy(every=0, dense_first=1, dense_last=2)  # S p D D
        sample(patch(spied(model, log), keep=0.5, mode=mode, reselect=dense_2_3), latent(), pos, neg, steps=2)
        step = [e for e in log if e["sigma"] == log[0]["sigma"]]
        b0, b1, b2 = (next(e for e in step if e["block"] == i) for i in (0, 1, 2))
        assert b1["tokens"] == 32 and b2["tokens"] == 64
        same = (b0["out"] == b2["img"]).all(dim=-1)  # [batch, tokens]
        unchanged[mode] = int(same.sum(dim=1)[0])
    assert unchanged == {"skip": 32, "nearest": 0}


def test_reuse_gives_each_pruned_token_its_own_cached_update(wan_models):
    """reuse: a span cache (one slot for S p p p) gives the same video as one slot per block, because a pruned token
    takes no part in its span's blocks; both differ from skip and nearest. The dense warm-up step fills the cache."""
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.tape_core import TapeConfig

    model = load_unet(wan_models["t2v"])
    pos, neg = conds()
    warm = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1)
    base = dict(keep_ratio=0.5, schedule=warm, reselect=ReselectPolicy(every=0), cache_format="bf16")
    out = {}
    for name, kw in {
        "span": {},
        "block": {"cache_slots": "block"},
        "fp8": {"cache_format": "fp8"},
        "skip": {"pruned_mode": "skip"},
        "nearest": {"pruned_mode": "nearest"},
    }.items():
        out[name] = sample(apply_tape(model, TapeConfig(**{**base, **kw})), latent(), pos, neg, steps=5)

    def dist(name):
        return float((out["span"] - out[name]).abs().mean() / out["span"].abs().mean())

    print({name: round(dist(name), 4) for name in out})
    assert dist("block") <= 2e-3  # bf16 rounding of 3 sums vs 1
    for other in ("skip", "nearest"):
        assert dist(other) > 10 * dist("block") and dist(other) > 5 * dist("fp8"), other


def test_a_second_tape_node_replaces_the_first(wan_models, tape_summaries):
    """Two TAPE nodes in a row: one set of wrappers and block patches (the second's settings), one summary per run;
    a second node that does nothing (keep 1) gives back the unpatched model's output bit for bit, and a block
    replace installed before the first TAPE node survives both."""
    from comfy.patcher_extension import WrappersMP

    model = load_unet(wan_models["t2v"])
    pos, neg = conds()
    log = []
    spied_model = spied(model, log)
    ref = sample(spied_model, latent(), pos, neg, steps=2)
    first = patch(spied_model, keep=0.5, reselect=EVERY2)
    second = patch(first, keep=0.25, reselect=ReselectPolicy(every=0))  # S p p p: other blocks than the first
    for wt in (WrappersMP.OUTER_SAMPLE, WrappersMP.DIFFUSION_MODEL):
        assert len(second.get_wrappers(wt, "tape")) == 1
    dit = second.model_options["transformer_options"]["patches_replace"]["dit"]
    assert all(
        dit[("double_block", i)].index == i and isinstance(dit[("double_block", i)].prev, BlockSpy) for i in range(4)
    )
    n = len(tape_summaries())
    sample(second, latent(), pos, neg, steps=2)
    stats = tape_summaries()[n:]
    assert len(stats) == 1 and stats[0].kept_fracs == [0.25, 0.25]  # each step once, at the second node's keep
    off = patch(first, keep=1.0)
    assert torch.equal(sample(off, latent(), pos, neg, steps=2), ref)
    assert all(
        isinstance(p, BlockSpy) for p in off.model_options["transformer_options"]["patches_replace"]["dit"].values()
    )


def test_reuse_cache_takes_the_kept_tokens_fresh_update_every_pruned_step(wan_models, monkeypatch):
    """Through real Wan blocks (whose activations are not contiguous): after each pruned step the cache holds, for
    every kept token, the residual its span just computed; in 0.1 these writes were lost."""
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.tape_core import ResidualCache, TapeConfig

    checks = []
    write = ResidualCache.write_rows

    def checked(self, flat, values):
        write(self, flat, values)
        got = self.decode(values.device, torch.float32).view(-1, values.shape[-1])[flat]
        checks.append(float((got - values.reshape(got.shape).float()).abs().max() / values.abs().max()))

    monkeypatch.setattr(ResidualCache, "write_rows", checked)
    model = load_unet(wan_models["t2v"])
    pos, neg = conds()
    warm = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1)
    sample(apply_tape(model, TapeConfig(schedule=warm, reselect=ReselectPolicy(every=0))), latent(), pos, neg, steps=4)
    assert len(checks) == 3 and max(checks) < 2**-3  # one write per pruned step; fp8 rounding only
