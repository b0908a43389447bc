"""Wan 2.2 A14B T2V, the official 4-step template graph, through ComfyUI's sampling path: unpruned vs TAPE.

  COMFYUI_PATH=.comfyui python -m research.bench.two_stage --out results/
  python -m research.bench.two_stage --tiny --out results/bench-cpu     # CPU check of the whole script

The graph (ComfyUI's template "Wan 2.2 14B T2V", the 4-step distilled-LoRA variant): two UNETLoaders (high-noise and
low-noise expert) -> LoraLoaderModelOnly -> ModelSamplingSD3 (shift 5) -> [TAPE Patch Model] -> KSamplerAdvanced:
4 steps, CFG 1, euler / simple; stage 1 = high-noise expert, steps 0-2, noise added, leftover noise returned;
stage 2 = low-noise expert, steps 2-4, no noise added, fully denoised. 640x640x81 = latent 16 x 21 x 80 x 80 =
33,600 video tokens. Each stage is run exactly as nodes.common_ksampler runs it: comfy.sample.sample with
start_step / last_step / force_full_denoise / disable_noise (and zero noise when noise is disabled).

The experts: an A14B expert has Wan 2.1 14B T2V's shape, so each is ComfyUI's own WanModel at that shape with random
weights (research/bench/wan_build.py), two DIFFERENT weight sets (the second is the first's loaded copy, redrawn in
place with another seed, so building it never holds a third 28 GB copy); --same-weights (or too little GPU memory)
loads one weight set as two ModelPatchers instead. The distilled LoRA is not applied: LoraLoaderModelOnly's patch is
merged into the weights when ComfyUI loads the model, so it adds no per-step cost. Weights as ComfyUI's loader casts
them (bf16/fp16); the template's fp8_scaled checkpoints would add a per-layer weight cast that pruning does not shrink.

Rows (each a pair of models, one per stage; each stage is its own sampler run with its own warm-up step):
- unpruned;
- tape_default: TapeConfig() on both: the first stage starts from noise with a dense warm-up step, the second
  resumes its latent and warms up at keep 0.75 (resume_keep); each stage's second step prunes at keep 0.5 (a single
  pruned step gets the base ratio);
- tape_v0.2_default: a dense warm-up step in both stages (resume_keep 1), as in 0.2;
- tape_fast_start: warmup_keep 0.75 and dense_first_blocks 0 on both (the opt-in fast start);
- tape_low_nodense: the default on the high-noise expert, warmup_steps=0 on the low-noise one (keeps 0.3, 0.7);
- tape_both_nodense: warmup_steps=0 on both.
Order: one warm-up pass of every row (first calls at a new token count, model loads), then --repeats passes of every
row in turn; each row's whole two-stage time (host clock around both sampler calls, synchronised) and per-step times
(CUDA events at the sampler callbacks). Reported: the median per row and its ratio to the unpruned median.
Results: <out>/two_stage_a14b_640.json (rewritten after every pass; two_stage_tiny.json with --tiny).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from .env import Clock, run_meta, start_bench

STEPS, CFG, SAMPLER, SCHEDULER, SHIFT, SPLIT = 4, 1.0, "euler", "simple", 5.0, 2
LATENT = {"a14b_640": (21, 80, 80), "tiny": (3, 16, 16)}  # 640x640x81 -> 21 x 80 x 80 latent
ROWS = ("unpruned", "tape_default", "tape_v0.2_default", "tape_fast_start", "tape_low_nodense", "tape_both_nodense")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="timed passes over all rows after the warm-up pass")
    p.add_argument("--rows", default=",".join(ROWS), help="comma list of rows")
    p.add_argument("--same-weights", action="store_true", help="one weight set loaded as two ModelPatchers")
    p.add_argument("--seed", type=int, default=0, help="noise seed of stage 1")
    p.add_argument("--budget-s", type=float, default=560.0, help="start no further pass after this long")
    p.add_argument("--tiny", action="store_true", help="tiny model and latent on the CPU (tests the script)")
    p.add_argument("--out", default="out")
    a = p.parse_args(argv)
    a.rows = [r for r in a.rows.split(",") if r]
    bad = [r for r in a.rows if r not in ROWS]
    if bad:
        p.error(f"unknown rows {bad}; rows: {', '.join(ROWS)}")
    a.model, a.config = ("tiny", "tiny") if a.tiny else ("14b", "a14b_640")
    return a


# ---- models ------------------------------------------------------------------------------------------------
def redraw_(diffusion_model, seed: int):
    """Redraw a loaded WanModel's weights in place by wan_build.build_state_dict's rules (norm weights 1, biases 0,
    the rest N(0, 1/fan_in)) from another seed: a second expert without a second state dict in memory."""
    import torch

    params = dict(diffusion_model.named_parameters())
    gen = None
    for name, p in sorted(params.items()):
        if not p.is_floating_point() or ("norm" in name and name.endswith(".weight")) or name.endswith("bias"):
            continue
        if gen is None:
            gen = torch.Generator(device=p.device).manual_seed(seed)
        fan_in = p[0].numel() if p.ndim > 1 else p.shape[-1]
        t = torch.randn(p.shape, generator=gen, dtype=torch.float32, device=p.device)
        p.copy_(t.mul_(max(1.0, fan_in) ** -0.5))
        del t


def build_experts(a, device, res: dict):
    """(high, low) ModelPatchers; res['meta'] records how they were made."""
    import comfy.model_patcher
    import torch

    from .wan_build import build_state_dict, load_model

    t0 = time.perf_counter()
    high = load_model(build_state_dict(a.model, device, seed=0))
    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
    weights = sum(t.numel() * t.element_size() for t in high.model.diffusion_model.state_dict().values())
    free = torch.cuda.mem_get_info()[0] if cuda else None
    # a second expert needs its weights plus room for sampling (activations at 33,600 tokens, TAPE's cache)
    distinct = not a.same_weights and (free is None or free > weights + 8 * 2**30)
    if distinct:
        low = load_model(high.model.diffusion_model.state_dict())
        redraw_(low.model.diffusion_model, seed=1)
        w_h = next(iter(high.model.diffusion_model.blocks[0].parameters()))
        w_l = next(iter(low.model.diffusion_model.blocks[0].parameters()))
        differ = not torch.equal(w_h, w_l)
    else:
        low = comfy.model_patcher.ModelPatcher(
            high.model, load_device=high.load_device, offload_device=high.offload_device
        )
        differ = False
    if cuda:
        torch.cuda.empty_cache()
        res["meta"]["weights_gb_allocated"] = torch.cuda.memory_allocated() / 2**30
    res["meta"].update(
        experts="two different random weight sets" if distinct else "one weight set loaded as two ModelPatchers",
        expert_weights_differ=differ,
        expert_weights_gb=weights / 2**30,
        weight_dtype=str(high.model.get_dtype()),
        free_gb_after_first=None if free is None else free / 2**30,
        build_load_s=time.perf_counter() - t0,
    )
    print(f"[two_stage] experts: {res['meta']['experts']} in {res['meta']['build_load_s']:.1f}s", flush=True)
    return high, low


def template(model):
    """ModelSamplingSD3 (shift 5) as the template wires it, after the loader."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    return ModelSamplingSD3().patch(model, SHIFT)[0]


def row_models(name: str, high, low):
    """(stage-1 model, stage-2 model) of a row; TAPE goes after ModelSamplingSD3, as in the shipped workflow."""
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy, TapeConfig

    default, nodense = TapeConfig(), TapeConfig(schedule=BudgetSchedule(warmup_steps=0))
    v02 = TapeConfig(schedule=BudgetSchedule(resume_keep=1.0))
    fast = TapeConfig(schedule=BudgetSchedule(warmup_keep=0.75), reselect=ReselectPolicy(dense_first=0))
    cfgs = {
        "unpruned": (None, None),
        "tape_default": (default, default),
        "tape_v0.2_default": (v02, v02),
        "tape_fast_start": (fast, fast),
        "tape_low_nodense": (default, nodense),
        "tape_both_nodense": (nodense, nodense),
    }[name]
    models = tuple(m if c is None else apply_tape(m, c) for m, c in zip((high, low), cfgs))
    keeps = [  # the second stage resumes the first one's latent
        [1.0] * SPLIT if c is None else c.schedule.ratios(SPLIT, c.keep_ratio, resumed=stage == 1)
        for stage, c in enumerate(cfgs)
    ]
    return models, keeps


# ---- one two-stage run -------------------------------------------------------------------------------------
def ksampler_advanced(model, latent, conds, seed, add_noise, start, end, leftover, probe):
    """nodes.KSamplerAdvanced.sample -> nodes.common_ksampler, step for step (no preview callback, no progress bar)."""
    import comfy.sample
    import torch

    pos, neg = conds
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    if add_noise:
        noise = comfy.sample.prepare_noise(latent, seed, None)
    else:
        noise = torch.zeros(latent.size(), dtype=latent.dtype, layout=latent.layout, device="cpu")
    return comfy.sample.sample(
        model,
        noise,
        STEPS,
        CFG,
        SAMPLER,
        SCHEDULER,
        pos,
        neg,
        latent,
        denoise=1.0,
        disable_noise=not add_noise,
        start_step=start,
        last_step=end,
        force_full_denoise=not leftover,
        noise_mask=None,
        callback=probe.callback,
        disable_pbar=True,
        seed=seed,
    )


def _marker(marks: list, clock):
    """Forward pre-hook of the diffusion model: a clock mark at the start of every model call."""

    def hook(module, args):
        marks.append(clock.mark())

    return hook


def two_stage(models, latent, conds, seed, clock, cap) -> dict:
    """Both stages of the template, timed end to end (host clock, synchronised) and per stage / step."""
    import torch

    from .sampling import Probe

    if clock.cuda:
        torch.cuda.reset_peak_memory_stats()
    stages, x = [], latent
    clock.sync()
    t0 = time.perf_counter()
    for i, (model, add_noise, start, end, leftover) in enumerate(
        ((models[0], True, 0, SPLIT, True), (models[1], False, SPLIT, 10000, False))
    ):
        probe, calls = Probe(clock), []
        hook = model.model.diffusion_model.register_forward_pre_hook(_marker(calls, clock))
        mark = cap.mark()
        ts = time.perf_counter()
        probe.start()
        try:
            x = ksampler_advanced(model, x, conds, seed if i == 0 else 0, add_noise, start, end, leftover, probe)
            clock.sync()
        finally:
            hook.remove()
        wall = time.perf_counter() - ts
        steps = [s["ms"] for s in probe.steps()]
        # set-up: from the stage's start to its first model call (load_models_gpu, conditioning, noise, sampler);
        # step i: from its model call's start (step 0) or the previous step's callback to its own callback
        setup = clock.ms(probe.start_mark, calls[0]) if calls else 0.0
        stage = {
            "wall_s": wall,
            "setup_ms": setup,
            "steps_ms": [steps[0] - setup, *steps[1:]] if steps else [],
            "after_ms": wall * 1e3 - sum(steps),
            "model_calls": len(calls),
        }
        for r in cap.since(mark):
            if getattr(r, "tape_stats", None) is not None:
                stage["tape"] = r.getMessage()
            elif "TAPE" in r.getMessage() and r.levelname == "WARNING":
                stage.setdefault("tape_warnings", []).append(r.getMessage())
        stages.append(stage)
    out = {"wall_s": time.perf_counter() - t0, "stages": stages, "output_finite": bool(torch.isfinite(x).all())}
    if clock.cuda:
        out["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out


# ---- main --------------------------------------------------------------------------------------------------
def main(argv=None):
    a = parse_args(argv)
    t_start = time.monotonic()
    device, root, cap = start_bench(a.tiny)
    import torch

    from .wan_build import text_conds

    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"two_stage_{a.config}.json"
    f, h, w = LATENT[a.config]
    res = {"meta": meta(a, root, torch, device, (f, h, w)), "runs": {r: [] for r in a.rows}}

    def save():
        res["meta"]["elapsed_s"] = time.monotonic() - t_start
        path.write_text(json.dumps(res, indent=1, default=str))

    clock = Clock(device)
    latent = torch.zeros(1, 16, f, h, w)  # EmptyHunyuanLatentVideo 640x640x81 (the sampler adds the noise)
    conds = text_conds()  # [1, 512, 4096] each; CFG 1: ComfyUI evaluates the positive only (batch 1)
    with torch.inference_mode():
        high, low = build_experts(a, device, res)
        high, low = template(high), template(low)
        models, keeps = {}, {}
        for r in a.rows:
            models[r], keeps[r] = row_models(r, high, low)
        res["keep_ratios_per_stage"] = keeps
        save()
        for p in range(1 + a.repeats):
            last = res["meta"]["pass_s"][-1] if res["meta"].get("pass_s") else 0.0
            if p > 0 and a.budget_s - (time.monotonic() - t_start) < 1.3 * last:
                res["meta"]["stopped"] = f"pass {p} skipped: not enough of --budget-s left"
                break
            tp = time.monotonic()
            for r in a.rows:
                run = two_stage(models[r], latent, conds, a.seed, clock, cap)
                run["pass"] = "warm-up" if p == 0 else p
                res["runs"][r].append(run)
                st = ", ".join(f"{s['wall_s']:.2f}s {[round(m) for m in s['steps_ms']]}" for s in run["stages"])
                print(f"[two_stage] pass {p} {r}: {run['wall_s']:.2f}s (stages {st})", flush=True)
                if clock.cuda:
                    torch.cuda.empty_cache()
            res["meta"].setdefault("pass_s", []).append(time.monotonic() - tp)
            res["summary"] = summarize(res)
            save()
    res["summary"] = summarize(res)
    save()
    print(summary_text(res), flush=True)
    return res


def summarize(res: dict) -> dict:
    """Median whole two-stage time per row over the timed passes (the warm-up pass left out) and its ratio to
    unpruned; per-stage and per-step medians for the where-the-time-goes analysis."""
    out = {}
    for r, runs in res["runs"].items():
        timed = [x for x in runs if x["pass"] != "warm-up"]
        if not timed:
            continue
        n_stages = len(timed[0]["stages"])
        stage_med = [statistics.median(x["stages"][i]["wall_s"] for x in timed) for i in range(n_stages)]
        steps_med = [
            [statistics.median(x["stages"][i]["steps_ms"][j] for x in timed) for j in range(len(x0["steps_ms"]))]
            for i, x0 in enumerate(timed[0]["stages"])
        ]
        out[r] = {
            "median_s": statistics.median(x["wall_s"] for x in timed),
            "walls_s": [x["wall_s"] for x in timed],
            "stage_median_s": stage_med,
            "step_median_ms": steps_med,
            # per stage: before its first model call (load_models_gpu, conditioning, noise) and after its last step
            "stage_setup_median_ms": [
                statistics.median(x["stages"][i]["setup_ms"] for x in timed) for i in range(n_stages)
            ],
            "stage_after_median_ms": [
                statistics.median(x["stages"][i]["after_ms"] for x in timed) for i in range(n_stages)
            ],
            "peak_gb": max((x.get("peak_gb") or 0.0) for x in timed),
            "tape": [s.get("tape") for s in timed[-1]["stages"]],
        }
    base = out.get("unpruned", {}).get("median_s")
    for v in out.values():
        v["speedup"] = base / v["median_s"] if base else None
    return out


def summary_text(res: dict) -> str:
    m = res["meta"]
    lines = [
        f"== Wan 2.2 A14B T2V 4-step two-stage, {m['video']} (latent {m['latent']}, {m['video_tokens']} tokens) on "
        f"{m.get('gpu', m['device'])}, {m.get('experts')}",
        "| row | keeps (stage 1 / stage 2) | median s | speed-up | stages s | steps ms | peak GB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r, v in res.get("summary", {}).items():
        k = " / ".join(",".join(f"{x:g}" for x in s) for s in res["keep_ratios_per_stage"][r])
        st = " + ".join(f"{s:.2f}" for s in v["stage_median_s"])
        steps = " / ".join(",".join(f"{x:.0f}" for x in s) for s in v["step_median_ms"])
        sp = f"{v['speedup']:.2f}x" if v["speedup"] else "-"
        lines.append(f"| {r} | {k} | {v['median_s']:.2f} | {sp} | {st} | {steps} | {v['peak_gb']:.2f} |")
    return "\n".join(lines)


def meta(a, root, torch, device, latent) -> dict:
    f, h, w = latent
    fields = {
        "graph": "Wan 2.2 14B T2V template, 4-step LoRA variant: ModelSamplingSD3 shift 5, KSamplerAdvanced x2",
        "model": a.model,
        "video": "640x640x81" if not a.tiny else f"{w * 8}x{h * 8}x{4 * f - 3}",
        "latent": [1, 16, f, h, w],
        "video_tokens": f * (h // 2) * (w // 2),
        "steps": STEPS,
        "split": SPLIT,
        "cfg": CFG,
        "sampler": SAMPLER,
        "scheduler": SCHEDULER,
        "shift": SHIFT,
        "repeats": a.repeats,
    }
    m = run_meta(root, torch, device, **fields)
    return m


if __name__ == "__main__":
    main()
