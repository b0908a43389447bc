"""tape_core unit tests: plain torch, no ComfyUI."""

import pytest
import torch
from comfyui_tape.tape_core import (
    BlockRole,
    BudgetSchedule,
    ReselectPolicy,
    TapeConfig,
    gather_rows,
    keep_count,
    nearest_kept,
    row_index,
    scatter_rows,
    score_attention_received,
    score_key_norm,
    select_per_frame,
    selection_jitter,
    smooth_over_frames,
    smoothing_matrix,
)
from comfyui_tape.tape_core.plan import parse_block_list
from comfyui_tape.tape_core.schedule import MIN_KEEP, parse_ratio_list


# ---- schedule ---------------------------------------------------------------------------------------------
def test_schedule_presets_are_mean_preserving_and_monotone():
    for preset in ("linear", "cosine", "step"):
        s = BudgetSchedule(preset=preset, spread=0.2, warmup_steps=0)
        r = s.ratios(20, 0.5)
        assert abs(sum(r) / len(r) - 0.5) < 1e-9, preset
        assert all(a <= b for a, b in zip(r, r[1:])), f"{preset} must relax over time: {r}"
        assert r[0] == pytest.approx(0.3) and r[-1] == pytest.approx(0.7)


def test_schedule_uses_few_distinct_token_counts():
    """Every distinct keep ratio costs a first-call warm-up (and a recompile under torch.compile)."""
    r = BudgetSchedule(preset="linear", spread=0.2).ratios(30, 0.5)
    assert len(set(r)) <= 10 and all(abs(x * 20 - round(x * 20)) < 1e-9 for x in r)


def test_schedule_dense_steps_and_edges():
    s = BudgetSchedule(preset="linear", spread=0.2, warmup_steps=2, dense_last_steps=1, warmup_keep=1.0)
    r = s.ratios(10, 0.5)
    assert r[:2] == [1.0, 1.0] and r[-1] == 1.0
    assert BudgetSchedule(warmup_steps=2, warmup_keep=0.62).ratios(4, 0.5)[:2] == [0.6, 0.6]  # on the 0.05 grid
    assert r[2] == pytest.approx(0.3) and r[-2] == pytest.approx(0.7)
    assert s.ratios(1, 0.5) == [1.0]  # one step, inside the warm-up
    assert s.keep_ratio(0, 0, 0.5) == 1.0  # unknown step count -> dense
    assert s.keep_ratio(99, 10, 0.5) == 1.0  # clamped to the last step, which is dense
    low = BudgetSchedule(preset="linear", spread=0.5, warmup_steps=0).ratios(5, 0.1)
    assert min(low) == MIN_KEEP and max(low) <= 1.0


def test_schedule_constant_and_custom():
    assert BudgetSchedule(preset="constant", warmup_steps=0).ratios(4, 0.4) == [0.4] * 4
    c = BudgetSchedule(preset="custom", warmup_steps=0, custom=(0.2, 0.6))
    assert c.ratios(5, 0.9) == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])  # stretched, base ignored
    assert BudgetSchedule(preset="custom", warmup_steps=0, custom=(0.3,)).ratios(3, 0.9) == [0.3] * 3


def test_schedule_bad_input():
    with pytest.raises(ValueError, match="custom_ratios"):
        parse_ratio_list("0.3, abc")
    with pytest.raises(ValueError, match=r"custom_ratios: 1.5 is outside the allowed range \(0, 1\]"):
        parse_ratio_list("0.3 1.5")
    with pytest.raises(ValueError, match="needs at least one"):
        BudgetSchedule(preset="custom")
    with pytest.raises(ValueError, match="spread"):
        BudgetSchedule(spread=0.7)
    with pytest.raises(ValueError, match="preset"):
        BudgetSchedule(preset="exponential")


# ---- block plan -------------------------------------------------------------------------------------------
def test_block_plan_every_and_list():
    p = ReselectPolicy(every=10, dense_first=1, dense_last=1).plan(30)
    assert p.describe() == ("S" + "p" * 9) * 2 + "S" + "p" * 8 + "D"
    assert [i for i, r in enumerate(p.roles) if r is BlockRole.SCORE] == [0, 10, 20]
    assert p.roles[29] is BlockRole.DENSE and p.roles[1] is BlockRole.PRUNE
    assert p.spans[5] == 0 and p.spans[15] == 1 and p.spans[25] == 2
    assert p.is_span_start(1) and p.is_span_end(9) and not p.is_span_end(8) and p.is_span_end(28)
    q = ReselectPolicy(blocks=(0, 4), dense_first=2).plan(8)
    assert q.describe() == "SDppSppp"
    once = ReselectPolicy(every=0, dense_first=3).plan(6)
    assert once.describe() == "DDSppp"


def test_block_plan_bad_input():
    with pytest.raises(ValueError, match=r"reselect_blocks \[35\] do not exist: this model has 30 blocks \(0-29\)"):
        ReselectPolicy(blocks=(0, 35)).plan(30)
    with pytest.raises(ValueError, match="leaves no block"):
        ReselectPolicy(dense_first=2, dense_last=2).plan(4)
    with pytest.raises(ValueError, match="dense_first_blocks must be >= 0"):
        ReselectPolicy(dense_first=-1)
    assert ReselectPolicy(every=4, dense_first=0).plan(8).describe() == "SpppSppp"  # scores come from a dense block
    assert ReselectPolicy(every=4, dense_first=0).plan(8, dense_scoring=False).describe() == "pppppppp"
    assert ReselectPolicy(every=4).plan(8, dense_scoring=False).describe() == "Sppppppp"  # the default: block 0 dense
    with pytest.raises(ValueError, match="'x' is not a block number"):
        parse_block_list("0, x")
    assert parse_block_list(" 20,0 10 ") == (0, 10, 20)


# ---- config -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.01])
def test_config_rejects_keep_ratio_outside_range(ratio):
    with pytest.raises(ValueError, match=r"keep_ratio must be in \(0, 1\]"):
        TapeConfig(keep_ratio=ratio)


def test_config_rejects_start_after_end_and_bad_names():
    with pytest.raises(ValueError, match=r"start_percent \(0.8\) must not be greater than end_percent \(0.2\)"):
        TapeConfig(start_percent=0.8, end_percent=0.2)
    with pytest.raises(ValueError, match="pruned_mode"):
        TapeConfig(pruned_mode="drop")
    with pytest.raises(ValueError, match="smoothing"):
        TapeConfig(smoothing=0.0)
    assert TapeConfig(keep_ratio=1.0).is_noop and not TapeConfig().is_noop
    assert TapeConfig(start_percent=0.5, end_percent=0.5).is_noop


# ---- selection, smoothing, gather/scatter ------------------------------------------------------------------
def test_select_per_frame_counts_sorted_and_deterministic():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(2, 5, 12, generator=g)
    k = keep_count(0.5, 12)
    kept = select_per_frame(scores, k)
    assert kept.shape == (2, 5 * 6)
    frames = kept // 12
    for f in range(5):
        assert ((frames == f).sum(dim=1) == 6).all()
    assert (kept.diff(dim=1) > 0).all()
    assert torch.equal(kept, select_per_frame(scores.clone(), k))
    top = scores[0, 0].topk(6).indices.sort().values
    assert torch.equal(kept[0, :6], top)
    assert keep_count(0.001, 12) == 1 and keep_count(1.0, 12) == 12
    assert torch.equal(select_per_frame(scores, 12)[0], torch.arange(60))


def test_smoothing_matrix_matches_recursion():
    s = torch.rand(1, 6, 4, dtype=torch.float64)
    a = 0.3
    ref = s.clone()
    for f in range(1, 6):
        ref[:, f] = a * s[:, f] + (1 - a) * ref[:, f - 1]
    out = smooth_over_frames(s.float(), a)
    assert torch.allclose(out.double(), ref, atol=1e-6)
    assert torch.equal(smooth_over_frames(s, 1.0), s)
    assert torch.allclose(smoothing_matrix(5, 0.5).sum(dim=1), torch.ones(5))  # rows are convex weights


def test_gather_scatter_roundtrip_multi_video():
    x = torch.randn(4, 10, 3)  # 2 chunks (cond, uncond) x 2 videos
    kept = torch.tensor([[0, 3, 7], [1, 2, 9]])
    flat = row_index(kept, 4, 10)
    y = gather_rows(x, flat)
    assert torch.equal(y[0], x[0, [0, 3, 7]]) and torch.equal(y[3], x[3, [1, 2, 9]])
    z = torch.zeros_like(x)
    scatter_rows(z, flat, y)
    mask = torch.zeros(4, 10, dtype=torch.bool)
    for r in range(4):
        mask[r, kept[r % 2]] = True
    assert torch.equal(z[mask], x[mask]) and (z[~mask] == 0).all()
    with pytest.raises(ValueError, match="not a multiple"):
        row_index(kept, 3, 10)


def test_attention_score_matches_dense_reference_and_chunking():
    g = torch.Generator().manual_seed(0)
    b, h, n, d = 2, 3, 40, 8
    q, k = torch.randn(b, n, h * d, generator=g), torch.randn(b, n, h * d, generator=g)
    qh, kh = q.view(b, n, h, d).transpose(1, 2), k.view(b, n, h, d).transpose(1, 2)
    probs = torch.softmax(qh @ kh.transpose(-1, -2) * d**-0.5, dim=-1)  # [b, h, n, n]
    ref = probs.sum(dim=2).mean(dim=1)  # every query sampled
    out = score_attention_received(q, k, h, n_samples=n)
    assert torch.allclose(out, ref, atol=1e-5)
    skip = score_attention_received(qh, kh, h, n_samples=n, skip_reshape=True)
    assert torch.allclose(skip, ref, atol=1e-5)
    import comfyui_tape.tape_core.scoring as scoring

    old = scoring._CHUNK_ELEMENTS
    scoring._CHUNK_ELEMENTS = 50  # forces one query and one head per chunk
    try:
        assert torch.allclose(score_attention_received(q, k, h, n_samples=n), ref, atol=1e-5)
    finally:
        scoring._CHUNK_ELEMENTS = old
    assert score_key_norm(k, h).shape == (b, n)


def test_smoothing_reduces_selection_jitter_on_constructed_field():
    """A static salient region plus per-frame noise: smoothing keeps the kept set steady across frames."""
    g = torch.Generator().manual_seed(0)
    f, hw = 16, 64
    base = torch.zeros(hw)
    base[:20] = 1.0  # 20 salient tokens, we keep 24: the last 4 slots are decided by noise
    scores = base + 0.6 * torch.rand(1, f, hw, generator=g)
    k = 24

    def changes(alpha):
        kept = select_per_frame(smooth_over_frames(scores, alpha), k)
        return float(selection_jitter(kept, f, hw)[0])

    raw, smooth = changes(1.0), changes(0.5)
    assert smooth < 0.8 * raw, (raw, smooth)
    assert changes(0.2) <= smooth


def test_nearest_kept_maps_to_same_frame_nearest_kept_token():
    g = torch.Generator().manual_seed(1)
    f, h, w = 3, 5, 6
    kept = select_per_frame(torch.rand(2, f, h * w, generator=g), 7)
    nn = nearest_kept(kept, f, h, w)
    assert nn.shape == (2, f * h * w)
    for b in range(2):
        for j, tok in enumerate(kept[b].tolist()):
            assert nn[b, tok] == j  # kept tokens map to themselves
        for tok in range(f * h * w):
            frame, pos = divmod(tok, h * w)
            target = int(kept[b, nn[b, tok]])
            assert target // (h * w) == frame

            def dist(t, pos=pos):
                return (pos // w - (t % (h * w)) // w) ** 2 + (pos % w - t % w) ** 2

            assert dist(target) == min(dist(int(t)) for t in kept[b, frame * 7 : (frame + 1) * 7])


# ---- rotation and the reuse cache -------------------------------------------------------------------------
def test_rotation_zero_is_pure_ranking_and_rotation_brings_old_tokens_in():
    from comfyui_tape.tape_core import rotation_priority

    g = torch.Generator().manual_seed(0)
    imp = torch.rand(1, 3, 16, generator=g)
    pure = select_per_frame(rotation_priority(imp, torch.zeros_like(imp), 0.0), 4)
    assert torch.equal(pure, select_per_frame(imp, 4))
    age = torch.zeros_like(imp)
    age[..., 0] = 3.0  # the least important token, left out for 3 steps, outranks every fresh one at rotation 1
    imp[..., 0] = -1.0
    kept = select_per_frame(rotation_priority(imp, age, 1.0), 4).view(3, 4) % 16
    assert (kept == 0).any(dim=1).all()
    assert not (select_per_frame(rotation_priority(imp, age, 0.0), 4).view(3, 4) % 16 == 0).any()


@pytest.mark.parametrize("fmt", ["fp8", "bf16"])
def test_residual_cache_roundtrip_and_row_writes(fmt):
    from comfyui_tape.tape_core import ResidualCache
    from comfyui_tape.tape_core.cache import bytes_per_slot

    g = torch.Generator().manual_seed(2)
    full = torch.randn(2, 10, 64, generator=g) * torch.logspace(-3, 1, 10).view(1, 10, 1)  # rows of any scale
    cache = ResidualCache(full, fmt)
    tol = 2**-4 if fmt == "fp8" else 2**-8  # relative to each row's largest value
    err = (cache.decode("cpu", torch.float32) - full).abs().amax(dim=-1) / full.abs().amax(dim=-1)
    assert err.max() <= tol, err.max()
    assert (
        cache.nbytes
        == bytes_per_slot(2, 10, 64, fmt)
        == 2 * 10 * 64 * (1 if fmt == "fp8" else 2) + (2 * 10 * 4 if fmt == "fp8" else 0)
    )
    flat = torch.tensor([3, 17])  # row 3 of video 0, row 7 of video 1
    new = torch.randn(2, 1, 64, generator=g)
    cache.write_rows(flat, new)
    out = cache.decode("cpu", torch.float32).view(20, 64)
    assert torch.allclose(out[flat], new.view(2, 64), rtol=tol, atol=tol * new.abs().max())
    keep = torch.ones(20, dtype=torch.bool)
    keep[flat] = False
    assert torch.allclose(out[keep], full.view(20, 64)[keep], rtol=tol, atol=tol * full.abs().max())


@pytest.mark.parametrize("fmt", ["fp8", "bf16"])
def test_host_cache_round_trips_exactly_and_never_copies_to_the_host_asynchronously(fmt, monkeypatch):
    """cache_device cpu: what write_rows and from_difference store decodes to exactly what the same encoding gives
    in place, and no copy towards host memory is asynchronous (0.3 indexed an asynchronous device-to-host copy into
    the host cache at once: on a GPU with work queued ahead every row came out wrong; research/bench/cache_check.py
    shows it there). Here the copies are CPU to CPU, so the spy on Tensor.to is what fails on 0.3's code."""
    from comfyui_tape.tape_core import ResidualCache

    async_to_host = []
    to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        dev = kwargs.get("device", args[0] if args else None)
        if kwargs.get("non_blocking") and dev is not None and torch.device(dev).type == "cpu":
            async_to_host.append(tuple(self.shape))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    g = torch.Generator().manual_seed(5)
    y, x = torch.randn(2, 12, 32, generator=g), torch.randn(2, 12, 32, generator=g)
    cache = ResidualCache.from_difference(y, x, fmt, "cpu")
    ref = ResidualCache(y - x, fmt, "cpu")
    assert torch.equal(cache.decode("cpu", torch.float32), ref.decode("cpu", torch.float32))
    flat = torch.tensor([0, 5, 13, 23])
    new = torch.randn(4, 32, generator=g)
    cache.write_rows(flat, new)
    got = cache.decode("cpu", torch.float32).view(24, 32)
    assert torch.equal(got[flat], ResidualCache(new.view(1, 4, 32), fmt, "cpu").decode("cpu", torch.float32)[0])
    keep = torch.ones(24, dtype=torch.bool)
    keep[flat] = False
    assert torch.equal(got[keep], ref.decode("cpu", torch.float32).view(24, 32)[keep])
    assert not async_to_host, async_to_host


def test_config_rejects_bad_reuse_settings():
    for kw in ({"rotation": -1.0}, {"cache_slots": "layer"}, {"cache_format": "fp4"}, {"blend": 2.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            TapeConfig(**kw)


def test_cache_and_row_adds_work_piece_by_piece(monkeypatch):
    """The cache's add and the nearest-row add go in pieces (bounded temporary memory): same result as whole."""
    from comfyui_tape.tape_core import ResidualCache, add_rows
    from comfyui_tape.tape_core import cache as cache_mod

    monkeypatch.setattr(cache_mod, "CHUNK_ROWS", 7)  # 2 x 25 rows: 8 pieces, the last one short
    g = torch.Generator().manual_seed(3)
    full, x = torch.randn(2, 25, 16, generator=g), torch.randn(2, 25, 16, generator=g)
    cache = ResidualCache(full, "bf16")
    y = x.clone()
    cache.add_into(y, alpha=0.7)
    assert torch.allclose(y, x + 0.7 * cache.decode("cpu", torch.float32), atol=1e-6)
    src, index = torch.randn(2, 5, 16, generator=g), torch.randint(0, 10, (50,), generator=g)
    y = x.clone()
    add_rows(y, src, index, alpha=0.3)
    assert torch.allclose(y, x + 0.3 * src.reshape(10, 16)[index].view_as(x), atol=1e-6)


def test_cache_writes_land_whatever_the_layout_of_the_residual():
    """The bug behind 0.1's reuse mode: Wan's activations are [B, L, C] views of a transposed patch embedding (not
    contiguous), and writing the fresh rows into a non-contiguous cache went into a temporary copy, so pruned
    tokens reused the warm-up step's update for the whole run. The cache owns contiguous storage."""
    from comfyui_tape.tape_core import ResidualCache

    full = torch.randn(2, 12, 16).transpose(1, 2)  # [B, L, C] = [2, 16, 12], stride (192, 1, 16), as in Wan
    assert not full.is_contiguous()
    cache = ResidualCache(full, "bf16")
    fresh = torch.randn(2, 3, 12)
    flat = torch.tensor([1, 5, 9, 17, 21, 25])
    cache.write_rows(flat, fresh)
    out = cache.decode("cpu", torch.float32).view(32, 12)
    assert torch.allclose(out[flat], fresh.reshape(6, 12), rtol=2**-8, atol=2**-8 * fresh.abs().max())


def test_plan_without_dense_scoring_prunes_the_later_reselection_blocks():
    """A random draw needs no scores: only the first selection keeps its (dense-first) SCORE block; later reselection
    blocks prune and start a new span."""
    p = ReselectPolicy(every=10, dense_first=1).plan(30, dense_scoring=False)
    assert p.describe() == "S" + "p" * 29
    assert p.spans[9] == 0 and p.spans[10] == 1 and p.is_span_start(10) and p.is_span_end(9)
    assert len(p.pruned_blocks()) == 29
    assert ReselectPolicy(every=10, dense_first=1).plan(30).describe().count("S") == 3


def test_a_single_pruned_step_gets_the_base_keep_ratio():
    """A stage of 2 steps with a dense warm-up step (the Wan 2.2 4-step template's stages) prunes one step: it must
    get the base ratio, not the schedule's hardest (mean preserving)."""
    assert BudgetSchedule().ratios(2, 0.5) == [1.0, 0.5]
    assert BudgetSchedule(preset="cosine").ratios(2, 0.6) == [1.0, 0.6]
