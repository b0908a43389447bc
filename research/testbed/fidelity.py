"""Fidelity benchmark on the testbed model: does TAPE beat naive per-frame pruning at the same budget?

For each prompt x seed, the unpruned video is the reference; every configuration samples the same prompt and
seed through ComfyUI's sampler and is scored against it. Metrics (frames in [0, 1]):
- psnr / ssim: per-frame fidelity to the reference;
- temporal_err: mean |(pruned frame-to-frame change) - (reference frame-to-frame change)|;
- flicker: mean |pruned frame-to-frame change| on pixels where the reference is static (|change| < 0.02);
- jitter: share of kept tokens that change between adjacent frames (TAPE's own statistic);
- keep: mean kept fraction in pruned blocks; compute: estimated share of block FLOPs spent.
ComfyUI is imported lazily: `run()` needs it importable.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from ...tape_core import BudgetSchedule, ReselectPolicy, TapeConfig

STATIC_THRESHOLD = 0.02

PROMPTS = (
    "cat moving right fast on brick, camera static",
    "astronaut moving left slow on grass, camera static",
    "rocket moving up fast on space, camera static",
    "coin moving down slow on gravel, camera pan-left",
    "photographer still on coffee, camera zoom-in",
    "cat moving left slow on moon, camera pan-right",
    "astronaut moving down fast on brick, camera pan-up",
    "rocket still on grass, camera static",
    "coin moving right slow on coffee, camera pan-down",
    "photographer moving up slow on gravel, camera static",
    "cat moving down slow on space, camera zoom-out",
    "astronaut moving right fast on moon, camera static",
)


# ---- metrics ----------------------------------------------------------------------------------------------
def psnr(a: torch.Tensor, ref: torch.Tensor) -> float:
    """a, ref [F, H, W, 3] in [0, 1]."""
    mse = float(((a - ref) ** 2).mean())
    return 99.0 if mse <= 1e-12 else 10 * math.log10(1.0 / mse)


def ssim(a: torch.Tensor, ref: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity

    vals = [
        structural_similarity(x.numpy(), y.numpy(), channel_axis=-1, data_range=1.0, win_size=7)
        for x, y in zip(a.float(), ref.float())
    ]
    return float(np.mean(vals))


def temporal_error(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((a[1:] - a[:-1]) - (ref[1:] - ref[:-1])).abs().mean())


def flicker(a: torch.Tensor, ref: torch.Tensor) -> float:
    """Frame-to-frame change the pruned video shows where the reference does not move."""
    d_ref = (ref[1:] - ref[:-1]).abs().amax(dim=-1)  # [F-1, H, W]
    static = d_ref < STATIC_THRESHOLD
    if not static.any():
        return float("nan")
    d = (a[1:] - a[:-1]).abs().amax(dim=-1)
    return float(d[static].mean())


def compare(video: torch.Tensor, ref: torch.Tensor) -> dict:
    return {
        "psnr": psnr(video, ref),
        "ssim": ssim(video, ref),
        "temporal_err": temporal_error(video, ref),
        "flicker": flicker(video, ref),
    }


# ---- configurations ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One row of the table: a TAPE config, EasyCache (threshold), or the unpatched model with another seed."""

    name: str
    tape: TapeConfig | None = None
    easycache: float | None = None
    seed_offset: int = 0
    tape_stage2: TapeConfig | None = None  # two-stage table: the second model's config (None: the same as tape)


# the node defaults of 0.1 (TapeConfig overrides)
OLD_DEFAULT = dict(score="attention", pruned_mode="nearest", rotation=0.0, reselect=ReselectPolicy(every=10))
RANDOM_REUSE = dict(score="random", smoothing=1.0, rotation=0.0, blend=0.0)  # the control: own update only
SWEEP_KEEPS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.85)


def variants(
    keep: float = 0.5,
    easycache_thresholds=(0.02, 0.05, 0.1),
    sweep_keeps=SWEEP_KEEPS,
) -> list[Variant]:
    """The benchmark's rows at mean keep ratio `keep`. Every TAPE row has one dense warm-up step.

    All TAPE rows share the default block plan and schedule unless named otherwise (so they cost the same). The
    default (random selection, reuse + blend) against TAPE's attention ranking with rotation and its ablations, the
    paper's pure ranking, naive per-frame pruning and the random controls; the sweeps draw the frontier.
    (Row names as in the 2026-11-25 table, where the TAPE-ranking rows were called "new default ...".)"""
    constant = BudgetSchedule(preset="constant", spread=0.0, warmup_steps=1)
    once = ReselectPolicy(every=0)
    default = TapeConfig(keep_ratio=keep)
    tape = TapeConfig(keep_ratio=keep, score="attention")  # TAPE's ranking + rotation, reuse + blend

    def cfg(**kw):
        return TapeConfig(**{**tape.__dict__, **kw})

    naive = dict(smoothing=1.0, rotation=0.0, blend=0.0, schedule=constant, reselect=once)
    rows = [
        Variant("default: random selection, reuse + blend", default),
        Variant("old default (TAPE, nearest)", cfg(**OLD_DEFAULT)),
        Variant("TAPE ranking + rotation, reuse + blend", tape),
        Variant("paper's TAPE (pure ranking), reuse", cfg(rotation=0.0, blend=0.0)),
        Variant("paper's TAPE (pure ranking), skip", cfg(rotation=0.0, pruned_mode="skip")),
        Variant("naive per-frame (attention, skip)", cfg(pruned_mode="skip", **naive)),
        Variant("naive per-frame, reuse", cfg(**naive)),
        Variant("control: random selection, reuse", cfg(**RANDOM_REUSE)),
        Variant("control: random selection, nearest", cfg(**{**RANDOM_REUSE, "pruned_mode": "nearest"})),
        Variant("TAPE ranking, own update only (blend 0)", cfg(blend=0.0)),
        Variant("TAPE ranking, constant schedule", cfg(schedule=constant)),
        Variant("TAPE ranking, reselect every 10", cfg(reselect=ReselectPolicy(every=10))),
        Variant("TAPE ranking, no smoothing (a=1)", cfg(smoothing=1.0)),
        Variant("TAPE ranking, rotation 0.5", cfg(rotation=0.5)),
        Variant("TAPE ranking, rotation 2", cfg(rotation=2.0)),
        Variant("default, cache per block", TapeConfig(keep_ratio=keep, cache_slots="block")),
        Variant("default, cache bf16", TapeConfig(keep_ratio=keep, cache_format="bf16")),
        Variant("TAPE ranking, nearest instead of reuse (no cache)", cfg(pruned_mode="nearest")),
    ]
    rows += [Variant(f"EasyCache threshold {t}", easycache=t) for t in easycache_thresholds]
    for r in sweep_keeps:
        rows.append(Variant(f"sweep default keep {r}", TapeConfig(keep_ratio=r)))
        rows.append(Variant(f"sweep TAPE ranking keep {r}", cfg(keep_ratio=r)))
        rows.append(Variant(f"sweep old default keep {r}", cfg(keep_ratio=r, **OLD_DEFAULT)))
        rows.append(Variant(f"sweep random reuse keep {r}", cfg(keep_ratio=r, **RANDOM_REUSE)))
    rows.append(Variant("scale: unpruned, another seed", seed_offset=1000))
    return rows


def few_step_variants(keep: float = 0.5) -> list[Variant]:
    """Rows for 4-8-step sampling at CFG 1 (distilled-LoRA graphs): is the dense warm-up step worth its cost?"""
    no_warmup = BudgetSchedule(preset="linear", spread=0.2, warmup_steps=0)
    tape = dict(keep_ratio=keep, score="attention")
    return [
        Variant("default (1 dense step)", TapeConfig(keep_ratio=keep)),
        Variant("default, no dense step", TapeConfig(keep_ratio=keep, schedule=no_warmup)),
        Variant("TAPE ranking + rotation (1 dense step)", TapeConfig(**tape)),
        Variant("TAPE ranking + rotation, no dense step", TapeConfig(**tape, schedule=no_warmup)),
        Variant("TAPE ranking, no dense step, nearest", TapeConfig(**tape, schedule=no_warmup, pruned_mode="nearest")),
        Variant("old default (nearest)", TapeConfig(keep_ratio=keep, **OLD_DEFAULT)),
        Variant("control: random selection, reuse", TapeConfig(keep_ratio=keep, **RANDOM_REUSE)),
        Variant("scale: unpruned, another seed", seed_offset=1000),
    ]


def frontier_variants(keeps=SWEEP_KEEPS, thresholds=(0.05, 0.1, 0.2)) -> list[Variant]:
    """The default's keep sweep and EasyCache's thresholds, for the speed-vs-fidelity plot; the random control (own
    update only) at 0.5 and the another-seed scale row."""
    rows = [Variant(f"default keep {r}", TapeConfig(keep_ratio=r)) for r in keeps]
    rows += [Variant(f"EasyCache threshold {t}", easycache=t) for t in thresholds]
    rows.append(Variant("control: random selection, own update only, keep 0.5", TapeConfig(**RANDOM_REUSE)))
    rows.append(Variant("scale: unpruned, another seed", seed_offset=1000))
    return rows


FAST = dict(  # the opt-in fast start: a warm-up at keep 0.75 instead of dense, and block 0 pruned too
    schedule=BudgetSchedule(warmup_keep=0.75), reselect=ReselectPolicy(dense_first=0)
)


def two_stage_variants(keep: float = 0.5) -> list[Variant]:
    """Rows for the Wan 2.2 A14B template's two stages (KSamplerAdvanced 0-2 / 2-4, CFG 1, TAPE on both models).
    Each stage is its own sampler run with its own warm-up step: the first starts from noise (a dense warm-up), the
    second resumes a partly denoised latent and warms up at resume_keep 0.75 (its pruned tokens take their nearest
    kept neighbour's update, which also starts its reuse cache; reuse from the previous stage is not possible:
    another model's residuals). 0.2 warmed both stages up dense."""
    return [
        Variant("defaults (stage 1 dense warm-up, stage 2 warm-up at keep 0.75)", TapeConfig(keep_ratio=keep)),
        Variant(
            "0.2 defaults (a dense warm-up step per stage: resume_keep 1)",
            TapeConfig(keep_ratio=keep, schedule=BudgetSchedule(resume_keep=1.0)),
        ),  # fmt: skip
        Variant(
            "warmup_keep 0.75 (both stages warm up at 0.75)", TapeConfig(keep_ratio=keep, schedule=FAST["schedule"])
        ),
        Variant("fast start: warmup_keep 0.75 + dense_first_blocks 0", TapeConfig(keep_ratio=keep, **FAST)),
        Variant(
            "stage 2 without a warm-up step (warmup_steps 0: keeps 0.3, 0.7)",
            TapeConfig(keep_ratio=keep),
            tape_stage2=TapeConfig(keep_ratio=keep, schedule=BudgetSchedule(warmup_steps=0)),
        ),  # fmt: skip
        Variant("defaults, nearest instead of reuse", TapeConfig(keep_ratio=keep, pruned_mode="nearest")),
        Variant("control: random selection, own update only", TapeConfig(keep_ratio=keep, **RANDOM_REUSE)),
        Variant("scale: unpruned, another seed", seed_offset=1000),
    ]


def warmup_variants(keep: float = 0.5) -> list[Variant]:
    """Rows on how a fresh run starts and which blocks prune, at 20-30 steps: the dense warm-up step (default) or one
    at keep 0.75 or none; block 0 dense (default) or pruned (a random draw needs no scoring block); both (the fast
    start that reaches 3x on Wan 14B 720p); a lower keep ratio at about the same compute."""
    return [
        Variant("default (dense warm-up step, block 0 dense)", TapeConfig(keep_ratio=keep)),
        Variant("warmup_keep 0.75", TapeConfig(keep_ratio=keep, schedule=FAST["schedule"])),
        Variant("dense_first_blocks 0 (block 0 pruned)", TapeConfig(keep_ratio=keep, reselect=FAST["reselect"])),
        Variant("fast start: warmup_keep 0.75 + dense_first_blocks 0", TapeConfig(keep_ratio=keep, **FAST)),
        Variant(
            "no warm-up step (warmup_steps 0)", TapeConfig(keep_ratio=keep, schedule=BudgetSchedule(warmup_steps=0))
        ),
        Variant(f"default at keep {keep - 0.05:.2f}", TapeConfig(keep_ratio=keep - 0.05)),
        Variant("control: random selection, own update only", TapeConfig(keep_ratio=keep, **RANDOM_REUSE)),
        Variant("scale: unpruned, another seed", seed_offset=1000),
    ]


def patched(model, variant: Variant):
    if variant.tape is not None:
        from ...integration.patcher import apply_tape

        return apply_tape(model, variant.tape)
    if variant.easycache is not None:
        from comfy_extras.nodes_easycache import EasyCacheNode

        return EasyCacheNode.execute(model, variant.easycache, 0.15, 0.95, False).result[0]
    return model


class _StatsCatcher(logging.Handler):
    """Collects the RunStats TAPE attaches to its end-of-run log line, and EasyCache's skip lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.tape, self.messages = [], []

    def emit(self, record):
        if hasattr(record, "tape_stats"):
            self.tape.append(record.tape_stats)
        self.messages.append(record.getMessage())


def _easycache_compute(messages: list[str]) -> float | None:
    import re

    for m in reversed(messages):
        hit = re.search(r"EasyCache - skipped (\d+)/(\d+) steps", m)
        if hit:
            return 1.0 - int(hit.group(1)) / int(hit.group(2))
    return None


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def run(
    model,
    prompts=PROMPTS,
    seeds=(1, 2),
    frames: int = 16,
    size: int = 64,
    steps: int = 20,
    rows: list[Variant] | None = None,
    progress=None,
    cfg: float = 4.0,
    stop=None,
    two_stage: int = 0,
) -> dict:
    """Sample every row for every prompt x seed; returns {row name: {metric: mean}} plus per-sample lists.
    two_stage > 0: every row (the reference too) samples as two KSamplerAdvanced stages split at that step, the
    testbed standing in for both experts (a row's tape_stage2 patches the second)."""
    from . import latent
    from .sample import sample_latent, two_stage_latent

    def sample(v: Variant | None, seed: int):
        if not two_stage:
            return sample_latent(model if v is None else patched(model, v), prompt, seed, frames, size, steps=steps,
                                 cfg=cfg)  # fmt: skip
        if v is None:
            pair = (model, model)
        else:
            second = v if v.tape_stage2 is None else Variant(v.name, v.tape_stage2)
            pair = (patched(model, v), patched(model, second))
        return two_stage_latent(pair, prompt, seed, frames, size, steps=steps, split=two_stage, cfg=cfg)

    rows = rows if rows is not None else variants()
    progress = progress or (lambda msg, _results: print(msg))
    catcher = _StatsCatcher()
    root, tape_log = logging.getLogger(), logging.getLogger("TAPE")
    levels = root.level, tape_log.level
    root.addHandler(catcher)
    root.setLevel(logging.INFO)
    tape_log.setLevel(logging.INFO)
    results = {v.name: [] for v in rows}
    try:
        for prompt in prompts:
            for seed in seeds:
                if stop is not None and stop():
                    break
                ref = latent.decode(sample(None, seed))[0]
                for v in rows:
                    catcher.tape.clear()
                    catcher.messages.clear()
                    lat = sample(v, seed + v.seed_offset)
                    m = compare(latent.decode(lat)[0], ref)
                    if catcher.tape:  # two stages: two runs, their FLOPs added
                        sts = catcher.tape[-2:] if two_stage else catcher.tape[-1:]
                        jit = [s.mean_jitter for s in sts if s.mean_jitter is not None]
                        m["jitter"] = float(np.mean(jit)) if jit else float("nan")
                        fr = [f for s in sts for f in s.kept_fracs]
                        m["keep"] = float(np.mean(fr)) if fr else 1.0
                        m["compute"] = sum(s.flops_run for s in sts) / max(1e-9, sum(s.flops_dense for s in sts))
                    elif v.easycache is not None:
                        m["compute"] = _easycache_compute(catcher.messages) or float("nan")
                    results[v.name].append(m)
                progress(f"done: {prompt!r} seed {seed}", results)
    finally:
        root.removeHandler(catcher)
        root.setLevel(levels[0])
        tape_log.setLevel(levels[1])
    return {"summary": summarise(results), "samples": results}


def summarise(results: dict) -> dict:
    """{row: [per-sample metrics]} -> {row: {metric: mean over samples}}."""
    return {
        name: {
            k: _mean([m.get(k, float("nan")) for m in ms])
            for k in ("psnr", "ssim", "temporal_err", "flicker", "jitter", "keep", "compute")
        }
        for name, ms in results.items()
    }


def markdown_table(summary: dict) -> str:
    cols = ("psnr", "ssim", "temporal_err", "flicker", "jitter", "keep", "compute")
    lines = [
        "| configuration | PSNR dB | SSIM | temporal err | flicker | jitter | keep | compute |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in summary.items():
        cells = []
        for c in cols:
            v = m.get(c, float("nan"))
            cells.append("-" if v != v else (f"{v:.2f}" if c in ("psnr", "keep", "compute", "jitter") else f"{v:.4f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
