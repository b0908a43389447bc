"""TAPE on HunyuanVideo and LTX-Video through ComfyUI's sampling path: unpruned vs the node defaults, one run per
configuration, random weights at the real sizes (ComfyUI's own model classes, detected by ComfyUI and loaded into a
real ModelPatcher), bf16.

  COMFYUI_PATH=.comfyui python -m research.bench.families --family hunyuan --size 13b --res 848x480x73 --out results/
  COMFYUI_PATH=.comfyui python -m research.bench.families --family hunyuan --size 13b --res 1280x720x129 --mode steps \
      --out results/
  COMFYUI_PATH=.comfyui python -m research.bench.families --family ltxv --size 2b --res 768x512x97 --out results/
  python -m research.bench.families --family ltxv --tiny --out results/bench-cpu     # CPU check of the whole script
  python -m research.bench.families --report research/bench/results/families_*.json            # the BENCHMARKS.md table

The graphs are ComfyUI's official templates:
- HunyuanVideo T2V: ModelSamplingSD3 (shift 7) + FluxGuidance 6, euler / simple, 20 steps, CFG 1 (guidance-
  distilled: one model call per step, batch 1), text [1, 128, 4096] (a short prompt; ComfyUI does not pad it).
- LTX-Video T2V: LTXVConditioning (25 fps), CFG 3 (cond + uncond as one batch of 2), euler, LTXVScheduler 30 steps,
  T5 text [1, 128, 4096] (ComfyUI pads it to 128) with its attention mask.

Per configuration, in this order (the JSON is rewritten after every section):
1. warm-up: a dense and a TAPE run of 2 steps on a 2-frame latent of the same size (library start-up, kernels);
2. probes: the SamplerCustom path with the full sigma list, evaluating only chosen steps (research/bench/sampling.py),
   so TAPE sees each step's real index: a dense model (3 steps; 1 with --mode steps) and TAPE with a `custom` schedule
   whose first pruned steps sit at the --probe-keeps ratios, each --probe-repeat times in a row. The first step at a
   new kept-token count pays a one-time cost (~0.1 s on an H100, in the first pruned block that meets the count);
   the last step of each keep is the one used, the first-step excess is reported. Every block call in
   the probes is timed with CUDA events: the dense block, TAPE's pruned block (gather -> block -> scatter, its reuse
   bookkeeping included) and the block on the kept rows alone, so the pruned-block speed-up is measured in situ
   (medians per block kind, so the one block that pays the new-shape cost does not count);
3. composed end-to-end times: first step + sum over the other steps of t(keep of that step), t interpolated
   between the probe keeps (research/bench/compose.py);
4. --mode full: whole runs of the unpruned model and of TAPE at the node defaults (TapeConfig()), timed end to end,
   and the composition checked against them; with --again a second TAPE run in the same process (every kept-token
   count already seen, as in a user's later runs).
Results: <out>/families_<family>_<size>_<video>.json and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback
from pathlib import Path

from .env import Clock, run_meta, start_bench

FAMILIES = {
    "hunyuan": {
        "sizes": {
            # ComfyUI's detection: num_heads = hidden // 128, mlp ratio 4, axes (16, 56, 56)
            "13b": dict(hidden_size=3072, depth=20, depth_single_blocks=40),
            "tiny": dict(hidden_size=256, depth=2, depth_single_blocks=4),
        },
        "steps": 20,
        "cfg": 1.0,
        "tiny_video": "160x128x17",
        "text_tokens": 128,
    },
    "ltxv": {
        "sizes": {
            # ComfyUI's detection: 32 heads, head dim = attn2.to_k rows // 32, cross-attention dim = its columns.
            # 13B (0.9.7/0.9.8) differs from 2B only there (4096 = 32 x 128 wide, 48 blocks); its checkpoint's
            # metadata config adds causal_temporal_positioning, which changes rope coordinates, not cost.
            "2b": dict(num_layers=28, attention_head_dim=64),
            "13b": dict(num_layers=48, attention_head_dim=128),
            "tiny": dict(num_layers=4, attention_head_dim=8),
        },
        "steps": 30,
        "cfg": 3.0,
        "tiny_video": "256x256x17",
        "text_tokens": 128,
    },
}

# Pruned-block ceilings (speed-up of one block at keep r over the dense block): the cost model's table, measured on
# an H100 on 2026-11-25 with ComfyUI's classes at batch 1, the kept tokens fed as a shorter video (no gather/scatter).
CEILINGS = {
    ("hunyuan", "13b", "848x480x73"): {0.75: 1.67, 0.5: 2.84, 0.3: 5.86},
    ("hunyuan", "13b", "1280x720x129"): {0.75: 1.66, 0.5: 3.32, 0.3: 7.44},
    ("ltxv", "2b", "768x512x97"): {0.75: 1.49, 0.5: 1.21, 0.3: 1.40},
    ("ltxv", "2b", "1216x704x121"): {0.75: 1.43, 0.5: 2.46, 0.3: 4.79},
    ("ltxv", "13b", "768x512x97"): {0.75: 1.32, 0.5: 2.02, 0.3: 3.27},
    ("ltxv", "13b", "1216x704x121"): {0.75: 1.42, 0.5: 2.27, 0.3: 4.22},
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(FAMILIES))
    p.add_argument("--size", default=None, help="hunyuan: 13b; ltxv: 2b, 13b (default: the first)")
    p.add_argument("--res", default=None, help="video WIDTHxHEIGHTxFRAMES, e.g. 848x480x73, 768x512x97")
    p.add_argument("--mode", default="full", choices=["full", "steps"], help="steps: composed end-to-end only")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the template's, 20 / 30)")
    p.add_argument("--probe-keeps", default="0.75,0.5,0.3", help="keep ratios of the TAPE probe's pruned steps")
    p.add_argument(
        "--probe-repeat",
        type=int,
        default=2,
        help="pruned probe steps per keep (the last is used; 1: first-call cost in)",
    )
    p.add_argument("--again", action="store_true", help="--mode full: also a second TAPE run (token counts seen)")
    p.add_argument("--text-tokens", type=int, default=None, help="prompt length in tokens (default 128)")
    p.add_argument("--budget-s", type=float, default=560.0, help="skip the whole runs that would not fit in this")
    p.add_argument("--tiny", action="store_true", help="tiny model and latent, 2 steps, on the CPU (tests the script)")
    p.add_argument("--report", nargs="+", metavar="JSON", help="print the BENCHMARKS.md tables of these results")
    p.add_argument("--out", default="out")
    a = p.parse_args(argv)
    if a.report:
        return a
    if a.family is None:
        p.error("--family is required")
    fam = FAMILIES[a.family]
    if a.tiny:
        a.size, a.res, a.steps = "tiny", fam["tiny_video"], a.steps or 2
    a.size = a.size or next(iter(fam["sizes"]))
    if a.size not in fam["sizes"]:
        p.error(f"--size for {a.family}: one of {', '.join(fam['sizes'])}")
    if a.res is None:
        p.error("--res WIDTHxHEIGHTxFRAMES is required (or --tiny)")
    a.video = parse_video(a.res)
    a.steps = a.steps or fam["steps"]
    a.text_tokens = a.text_tokens or fam["text_tokens"]
    keeps = [float(r) for r in a.probe_keeps.split(",")]
    a.probe_repeat = max(1, min(a.probe_repeat, (a.steps - 1) // max(1, min(len(keeps), a.steps - 1))))
    a.probe_keeps = keeps[: max(1, (a.steps - 1) // a.probe_repeat)]
    return a


def parse_video(text: str) -> tuple[int, int, int]:
    w, h, f = (int(v) for v in text.lower().split("x"))
    return w, h, f


# ---- models ------------------------------------------------------------------------------------------------
def build_state_dict(family: str, size: str, device, dtype, seed: int = 0) -> dict:
    """State dict of ComfyUI's own model class with well-scaled random weights, made directly on `device`."""
    import comfy.ops
    import torch

    cfg = FAMILIES[family]["sizes"][size]
    with torch.device("meta"):  # names, shapes and dtypes only
        if family == "hunyuan":
            from comfy.ldm.hunyuan_video.model import HunyuanVideo

            ref = HunyuanVideo(
                image_model="hunyuan_video",
                in_channels=16,
                out_channels=16,
                vec_in_dim=768,
                context_in_dim=4096,
                mlp_ratio=4.0,
                num_heads=cfg["hidden_size"] // 128,
                axes_dim=[16, 56, 56],
                theta=256,
                patch_size=[1, 2, 2],
                qkv_bias=True,
                guidance_embed=True,
                byt5=False,
                meanflow=False,
                dtype=dtype,
                operations=comfy.ops.disable_weight_init,
                **cfg,
            )
        else:
            from comfy.ldm.lightricks.model import LTXVModel

            inner = 32 * cfg["attention_head_dim"]
            ref = LTXVModel(cross_attention_dim=inner, dtype=dtype, operations=comfy.ops.disable_weight_init, **cfg)
    gen = torch.Generator(device=device).manual_seed(seed)
    sd = {}
    for name, p in ref.state_dict().items():
        if ("norm" in name and name.endswith(".weight")) or name.endswith(".scale"):
            sd[name] = torch.ones(p.shape, dtype=p.dtype, device=device)
        elif name.endswith("bias"):
            sd[name] = torch.zeros(p.shape, dtype=p.dtype, device=device)
        else:
            fan_in = p[0].numel() if p.ndim > 1 else p.shape[-1]
            t = torch.randn(p.shape, generator=gen, dtype=torch.float32, device=device)
            sd[name] = t.mul_(max(1.0, fan_in) ** -0.5).to(p.dtype)
    return sd


def load(family: str, sd: dict):
    """ComfyUI detects the state dict (model_detection), then research/bench/wan_build.load_model's loader (the stock
    load_diffusion_model_state_dict, constructing on the GPU) puts it into a ModelPatcher."""
    import comfy.model_detection

    from .wan_build import load_model

    config = comfy.model_detection.model_config_from_unet(sd, "")
    want = {"hunyuan": "HunyuanVideo", "ltxv": "LTXV"}[family]
    if config is None or type(config).__name__ != want:
        raise RuntimeError(f"ComfyUI detected the state dict as {type(config).__name__}, not {want}")
    return load_model(sd), dict(config.unet_config)


def latent_for(family: str, video, frames: int | None = None):
    """What ComfyUI's empty-latent node of the family hands to the sampler."""
    w, h, f = video
    f = frames or f
    if family == "hunyuan":
        from comfy_extras.nodes_hunyuan import EmptyHunyuanLatentVideo

        return EmptyHunyuanLatentVideo().generate(w, h, f, 1)[0]["samples"]
    from comfy_extras.nodes_lt import EmptyLTXVLatentVideo

    return EmptyLTXVLatentVideo.execute(w, h, f, 1).result[0]["samples"]


def token_grid(family: str, latent) -> tuple[int, int, int]:
    f, h, w = latent.shape[2:]
    return (f, h // 2, w // 2) if family == "hunyuan" else (f, h, w)


def conditioning(family: str, text_tokens: int, seed: int = 1):
    """positive, negative as the template's text encoder + conditioning nodes hand them to the sampler."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if family == "hunyuan":
        from comfy_extras.nodes_flux import FluxGuidance

        def one():
            pooled = torch.randn(1, 768, generator=g)  # CLIP-L pooled output
            return [[torch.randn(1, text_tokens, 4096, generator=g), {"pooled_output": pooled}]]

        return FluxGuidance.execute(one(), 6.0).result[0], one()
    from comfy_extras.nodes_lt import LTXVConditioning

    def one():
        mask = torch.zeros(1, text_tokens, dtype=torch.long)
        mask[:, : min(text_tokens, 40)] = 1  # a short prompt padded to 128 T5 tokens
        return [[torch.randn(1, text_tokens, 4096, generator=g), {"attention_mask": mask}]]

    out = LTXVConditioning.execute(one(), one(), 25.0).result
    return out[0], out[1]


def template_model(family: str, model):
    if family == "hunyuan":
        from comfy_extras.nodes_model_advanced import ModelSamplingSD3

        return ModelSamplingSD3().patch(model, 7.0)[0]
    return model


def sigmas_for(family: str, model, latent, steps: int):
    import comfy.samplers

    if family == "hunyuan":
        return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps).cpu()
    from comfy_extras.nodes_lt import LTXVScheduler

    return LTXVScheduler.execute(steps, 2.05, 0.95, True, 0.1, {"samples": latent}).result[0]


# ---- per-block timing ------------------------------------------------------------------------------------
class BlockTimes:
    """CUDA-event (CPU: clock) times of block calls, by the sampler step they ran in. Shared, never copied."""

    def __init__(self, clock):
        self.clock = clock
        self.records = []  # (steps done before, tag, kind, index, rows in img, start mark, end mark)
        self.batches = set()  # batch sizes the blocks saw (2 = cond + uncond in one call)
        self.on = False

    def __deepcopy__(self, memo):
        return self

    def wrap(self, m, blocks, tag: str):
        """Wrap every block's replace on the clone m (or the block itself) in a timer tagged `tag`."""
        dit = m.model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
        for kind, i in blocks:
            m.set_model_patch_replace(TimedBlock(self, tag, kind, i, dit.get((kind, i))), "dit", kind, i)
        return m

    def collect(self, run_idx) -> list[dict]:
        self.clock.sync()
        out = []
        for done, tag, kind, i, rows, a, b in self.records:
            step = run_idx[done] if 0 <= done < len(run_idx) else None
            out.append(dict(step=step, tag=tag, kind=kind, i=i, rows=rows, ms=self.clock.ms(a, b)))
        self.records.clear()
        return out


class TimedBlock:
    """A patches_replace["dit"] callable: times the replace it wraps (TAPE's patch, another timer, or the block)."""

    is_tape = False

    def __init__(self, times: BlockTimes, tag: str, kind: str, index: int, prev=None):
        self.times, self.tag, self.kind, self.index, self.prev = times, tag, kind, index, prev

    def __deepcopy__(self, memo):
        return self

    def _run(self, args, extra):
        return self.prev(args, extra) if self.prev is not None else extra["original_block"](args)

    def __call__(self, args, extra):
        from .sampling import Probe

        t = self.times
        if not t.on:
            return self._run(args, extra)
        rows = int(args["img"].shape[1])
        t.batches.add(int(args["img"].shape[0]))
        a = t.clock.mark()
        out = self._run(args, extra)
        b = t.clock.mark()
        done = len(Probe.active.marks) if Probe.active is not None else -1
        t.records.append((done, self.tag, self.kind, self.index, rows, a, b))
        return out


def block_summary(dense_recs: list[dict], tape_recs: list[dict], keep_of_step: dict, roles, blocks, grid) -> dict:
    """Per kind: median dense block ms (the dense probe, first evaluated step left out when there are more), and per
    probe keep: TAPE's pruned block ms ('outer': gather -> block -> scatter + reuse), the block on the kept rows
    alone ('inner'), the SCORE blocks' ms, and the speed-ups over the dense block."""
    from comfyui_tape.tape_core import BlockRole, keep_count

    steps = sorted({r["step"] for r in dense_recs if r["step"] is not None})
    use = set(steps[1:]) if len(steps) > 1 else set(steps)
    dense = {}
    for r in dense_recs:
        if r["step"] in use and r["tag"] == "inner":
            dense.setdefault(r["kind"], []).append(r["ms"])
    dense_ms = {k: statistics.median(v) for k, v in dense.items()}
    role_of = {blk: roles[n] for n, blk in enumerate(blocks)}
    per_keep = {}
    inner_of = {}
    for r in tape_recs:
        keep = keep_of_step.get(r["step"])
        if keep is None:
            continue
        if r["tag"] == "inner":
            inner_of[(r["step"], r["kind"], r["i"])] = r
            continue
        inner = inner_of.pop((r["step"], r["kind"], r["i"]), None)
        role = role_of[(r["kind"], r["i"])]
        d = per_keep.setdefault(keep, {"kinds": {}})
        k = d["kinds"].setdefault(r["kind"], {"outer": [], "inner": [], "score": [], "rows": None, "full_rows": None})
        if role is BlockRole.PRUNE and inner is not None and inner["rows"] < r["rows"]:
            k["outer"].append(r["ms"])
            k["inner"].append(inner["ms"])
            k["rows"], k["full_rows"] = inner["rows"], r["rows"]
        elif role is BlockRole.SCORE:
            k["score"].append(r["ms"])
    out = {"dense_ms": dense_ms, "keeps": {}}
    n = grid[1] * grid[2]
    for keep, d in sorted(per_keep.items()):
        row = {"video_kept": keep_count(keep, n) / n, "kinds": {}}
        for kind, k in d["kinds"].items():
            if not k["outer"]:
                continue
            o, i = statistics.median(k["outer"]), statistics.median(k["inner"])
            dm = dense_ms.get(kind)
            row["kinds"][kind] = {
                "pruned_ms": o,
                "kept_rows_only_ms": i,
                "gather_scatter_ms": o - i,
                "rows": k["rows"],
                "full_rows": k["full_rows"],
                "n_pruned_blocks": len(k["outer"]),
                "score_block_ms": statistics.median(k["score"]) if k["score"] else None,
                "slowest_excess_ms": max(k["outer"]) - o,  # the block that met a new shape first
                "speedup": dm / o if dm else None,
                "speedup_kept_rows_only": dm / i if dm else None,
            }
        row.update(aggregate(row["kinds"], dense_ms))
        out["keeps"][str(keep)] = row
    return out


def aggregate(kinds: dict, dense_ms: dict) -> dict:
    """Pruned-block speed-up over all pruned blocks of a step: per-kind medians weighted by the kind's block count."""
    dense = sum(dense_ms[kind] * k["n_pruned_blocks"] for kind, k in kinds.items() if kind in dense_ms)
    pruned = sum(k["pruned_ms"] * k["n_pruned_blocks"] for kind, k in kinds.items() if kind in dense_ms)
    inner = sum(k["kept_rows_only_ms"] * k["n_pruned_blocks"] for kind, k in kinds.items() if kind in dense_ms)
    return {"speedup": dense / pruned, "speedup_kept_rows_only": dense / inner} if pruned else {}


def ceiling_at(table: dict | None, r: float) -> float | None:
    """The cost model's ceiling, piecewise-linear in keep r between its columns (1.0x at keep 1)."""
    if not table:
        return None
    from .compose import curve

    return curve({**table, 1.0: 1.0})(r)


# ---- one configuration -----------------------------------------------------------------------------------
def main(argv=None):
    a = parse_args(argv)
    if a.report:
        print(report_text([json.loads(Path(f).read_text()) for f in a.report]))
        return None
    t_start = time.monotonic()
    device, root, cap = start_bench(a.tiny)
    import torch

    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = "tiny" if a.tiny else f"{a.size}_{a.res}"
    path = out_dir / f"families_{a.family}_{tag}.json"
    res = {"meta": meta(a, root, torch, device), "errors": {}}

    def save():
        res["meta"]["elapsed_s"] = time.monotonic() - t_start
        path.write_text(json.dumps(res, indent=1, default=str))

    def section(name, fn):
        try:
            fn()
        except Exception as e:  # keep what the other sections measured
            traceback.print_exc()
            res["errors"][name] = f"{type(e).__name__}: {e}"[:3000]
        save()
        if device == "cuda":
            torch.cuda.empty_cache()

    clock = Clock(device)
    dtype = torch.bfloat16
    with torch.inference_mode():
        t0 = time.perf_counter()
        sd = build_state_dict(a.family, a.size, device, dtype)
        model, unet_config = load(a.family, sd)
        del sd
        if device == "cuda":
            torch.cuda.empty_cache()
            res["meta"]["weights_gb"] = torch.cuda.memory_allocated() / 2**30
        res["meta"]["build_load_s"] = time.perf_counter() - t0
        res["meta"]["unet_config"] = {k: v for k, v in unet_config.items() if not k.startswith("_")}
        res["meta"]["weight_dtype"] = str(model.model.get_dtype())
        print(f"[families] {a.family} {a.size} built and loaded in {res['meta']['build_load_s']:.1f}s", flush=True)
        b = Bench(a, model, clock, cap, res, save, time_left=lambda: a.budget_s - (time.monotonic() - t_start))
        section("warmup", b.warmup)
        section("probes", b.probes)
        section("compose", b.compose)
        if a.mode == "full":
            section("rows", b.whole_runs)
            section("check", b.check)
        section("summary", b.summary)
    save()
    print(summary_text(res), flush=True)
    return res


class Bench:
    def __init__(self, a, model, clock, cap, res, save, time_left):
        from comfyui_tape.integration.adapters import adapter_for

        from .sampling import probed_base

        self.a, self.clock, self.cap, self.res, self.save, self.time_left = a, clock, cap, res, save, time_left
        self.fam = FAMILIES[a.family]
        self.base = template_model(a.family, probed_base(model))
        self.adapter = adapter_for(model.model.diffusion_model)
        self.latent = latent_for(a.family, a.video)
        self.grid = token_grid(a.family, self.latent)
        self.conds = conditioning(a.family, a.text_tokens)
        self.sigmas = sigmas_for(a.family, self.base, self.latent, a.steps)
        self.times = BlockTimes(clock)
        f, h, w = self.grid
        res["meta"].update(
            latent=list(self.latent.shape),
            token_grid=[f, h, w],
            video_tokens=f * h * w,
            sigmas=[round(float(s), 5) for s in self.sigmas],
            blocks=len(self.adapter.blocks),
        )

    # ---- helpers ----------------------------------------------------------------------------------------
    def tape(self, model, schedule=None):
        """TAPE at the node's defaults (TapeConfig()), or with a probe schedule."""
        from comfyui_tape.integration.patcher import apply_tape
        from comfyui_tape.tape_core import TapeConfig

        return apply_tape(model, TapeConfig() if schedule is None else TapeConfig(schedule=schedule))

    def sample(self, model, latent=None, run_idx=None, sigmas=None):
        """One sampler call: every step (run_idx None: SamplerCustom + euler) or only the steps in run_idx."""
        import comfy.samplers

        from .sampling import _run, sample_steps_euler

        latent = self.latent if latent is None else latent
        sigmas = self.sigmas if sigmas is None else sigmas
        if run_idx is None:
            sampler = comfy.samplers.sampler_object("euler")
        else:
            sampler = comfy.samplers.KSAMPLER(sample_steps_euler, extra_options={"run_steps": tuple(run_idx)})

        def body(cs, noise, pos, neg, probe):
            return cs.sample_custom(
                model,
                noise,
                self.fam["cfg"],
                sampler,
                sigmas,
                pos,
                neg,
                latent,
                callback=probe.callback,
                disable_pbar=True,
                seed=0,
            )

        return _run(model, latent, self.conds, self.clock, self.cap, body, hook=False)

    def timed(self, model, tag):
        return self.times.wrap(model.clone(), self.adapter.blocks, tag)

    def probe_schedule(self):
        from comfyui_tape.tape_core import BudgetSchedule

        keeps, rep = self.a.probe_keeps, self.a.probe_repeat
        probe = tuple(r for r in keeps for _ in range(rep))
        ratios = probe + (0.5,) * (self.a.steps - 1 - len(probe))
        sched = BudgetSchedule(preset="custom", spread=0.0, warmup_steps=1, custom=ratios)
        steps = {i + 1: r for i, r in enumerate(probe)}
        used = {s: r for s, r in steps.items() if s % rep == 0}  # the last of each keep's steps
        return sched, steps, used

    # ---- sections ---------------------------------------------------------------------------------------
    def warmup(self):
        """Library start-up and first kernels on a 2-latent-frame video of the same size (cheap at any size)."""
        w, h, _ = self.a.video
        short = latent_for(self.a.family, self.a.video, frames={"hunyuan": 5, "ltxv": 9}[self.a.family])
        sig = sigmas_for(self.a.family, self.base, short, self.a.steps)
        for m in (self.base, self.tape(self.base)):
            self.sample(m, latent=short, run_idx=[0, 1], sigmas=sig)
        self.res["warmup"] = {"latent": list(short.shape)}

    def probes(self):
        a, res = self.a, self.res
        dense_idx = [0, 1, 2] if a.mode == "full" else [0]
        dense_idx = dense_idx[: a.steps]
        self.times.on = True
        try:
            row = self.sample(self.timed(self.base, "inner"), run_idx=dense_idx)
            row["blocks"] = self.times.collect(dense_idx)
            row["block_batches"] = sorted(self.times.batches)
            res["probe_dense"] = row
            print(_line("probe_dense", row), flush=True)
            self.save()
            sched, all_steps, keep_of_step = self.probe_schedule()
            tape_idx = [0, *sorted(all_steps)]
            m = self.timed(self.tape(self.timed(self.base, "inner"), sched), "outer")
            row = self.sample(m, run_idx=tape_idx)
            row["blocks"] = self.times.collect(tape_idx)
            res["probe_tape"] = row
            res["probe_keep_of_step"] = keep_of_step
            ms = {s["step"]: s["ms"] for s in row["steps"]}
            first = {r: s for s, r in sorted(all_steps.items(), reverse=True)}  # first step of each keep
            res["first_call_excess_ms"] = {
                str(r): ms[first[r]] - ms[s] for s, r in keep_of_step.items() if first[r] != s
            }
            print(_line("probe_tape", row), flush=True)
        finally:
            self.times.on = False
        spec = m.model_options["transformer_options"]["tape_spec"]
        res["block_times"] = block_summary(
            res["probe_dense"]["blocks"],
            res["probe_tape"]["blocks"],
            keep_of_step,
            spec.plan.roles,
            self.adapter.blocks,
            self.grid,
        )
        res["plan"] = spec.plan.describe()
        ceil = CEILINGS.get((a.family, a.size, a.res))
        for keep, row in res["block_times"]["keeps"].items():
            c = ceiling_at(ceil, float(keep))
            row["ceiling"] = c
            if c and row.get("speedup"):
                row["of_ceiling"] = row["speedup"] / c
        for rows in (res["probe_dense"], res["probe_tape"]):
            del rows["blocks"]  # summarised above; the raw per-call list is long

    def compose(self):
        from comfyui_tape.tape_core import BudgetSchedule

        from .compose import compose_ms, curve, step_points

        res, steps = self.res, self.a.steps
        d = [s["ms"] for s in res["probe_dense"]["steps"]]
        t_dense = statistics.median(d[1:]) if len(d) > 1 else d[0]
        p = res["probe_tape"]["steps"]
        keep_of_step = res["probe_keep_of_step"]
        points = step_points(p[1:], keep_of_step)
        t_keep = curve(points)
        ratios = BudgetSchedule().ratios(steps, 0.5)  # TapeConfig(): keep 0.5, linear spread 0.2, 1 dense step
        unpruned = compose_ms(d[0], [1.0] * steps, t_keep, t_dense)
        tape = compose_ms(p[0]["ms"], ratios, t_keep, t_dense)
        res["composed"] = {
            "unpruned_ms": unpruned,
            "tape_default_ms": tape,
            "speedup": unpruned / tape,
            "t_dense_step_ms": t_dense,
            "t_first_dense_ms": d[0],
            "t_first_tape_ms": p[0]["ms"],
            "t_step_ms_by_keep": points,
            "default_ratios": ratios,
        }
        print(f"[compose] unpruned {unpruned / 1e3:.1f}s, TAPE {tape / 1e3:.1f}s: {unpruned / tape:.2f}x", flush=True)

    def whole_runs(self):
        res = self.res
        res["rows"] = {}
        comp = res.get("composed", {})
        rows = [("unpruned", self.base), ("tape_default", self.tape(self.base))]
        if self.a.again:
            rows.append(("tape_default_again", self.tape(self.base)))
        for name, m in rows:
            ms = comp.get(f"{name.removesuffix('_again')}_ms")
            need = 1.2 * ms / 1e3 + 5 if ms else 0.0
            if self.time_left() < need:
                res["rows"][name] = {"skipped": f"needs ~{need:.0f}s, {self.time_left():.0f}s left of --budget-s"}
                print(f"[rows] {name}: skipped ({res['rows'][name]['skipped']})", flush=True)
                continue
            row = self.sample(m)
            res["rows"][name] = row
            print(_line(name, row), flush=True)
            self.save()

    def check(self):
        res = self.res
        rows, comp = res.get("rows", {}), res.get("composed", {})
        check = {}
        for name, key in (
            ("unpruned", "unpruned_ms"),
            ("tape_default", "tape_default_ms"),
            ("tape_default_again", "tape_default_ms"),
        ):
            if "wall_s" in rows.get(name, {}) and key in comp:
                check[name] = comp[key] / (rows[name]["wall_s"] * 1e3)
        res["composition_check"] = check
        print(f"[check] composed / measured: {check}", flush=True)

    def summary(self):
        """The headline numbers: measured where the whole runs exist, else composed."""
        res = self.res
        rows, comp = res.get("rows", {}), res.get("composed", {})
        s = {}
        if "wall_s" in rows.get("unpruned", {}) and "wall_s" in rows.get("tape_default", {}):
            u, t = rows["unpruned"], rows["tape_default"]
            s.update(source="measured", unpruned_s=u["wall_s"], tape_s=t["wall_s"], speedup=u["wall_s"] / t["wall_s"])
            s["peak_gb"] = {"unpruned": u.get("peak_gb"), "tape_default": t.get("peak_gb")}
            s["tape_summary"] = t.get("tape", {}).get("summary")
        elif comp:
            s.update(
                source="composed",
                unpruned_s=comp["unpruned_ms"] / 1e3,
                tape_s=comp["tape_default_ms"] / 1e3,
                speedup=comp["speedup"],
            )
            s["peak_gb"] = {
                "unpruned": res.get("probe_dense", {}).get("peak_gb"),
                "tape_default": res.get("probe_tape", {}).get("peak_gb"),
            }
            s["peak_source"] = "probes"
            s["tape_summary"] = res.get("probe_tape", {}).get("tape", {}).get("summary")
            s["tape_summary_source"] = "the TAPE probe (custom schedule, only the probe steps evaluated)"
        if comp:
            s["dense_step_ms"] = comp["t_dense_step_ms"]
        res["summary"] = s


def _line(name: str, row: dict) -> str:
    steps = ", ".join(f"{s['step']}:{s['ms']:.0f}" for s in row["steps"])
    peak = f", peak {row['peak_gb']:.2f} GB" if "peak_gb" in row else ""
    tape = f"\n    {row['tape']['summary']}" if "tape" in row else ""
    return f"[{name}] {row['wall_s']:.2f}s{peak}, steps ms {steps}{tape}"


def meta(a, root, torch, device) -> dict:
    fields = {
        "family": a.family,
        "size": a.size,
        "video": a.res,
        "mode": a.mode,
        "steps": a.steps,
        "cfg": FAMILIES[a.family]["cfg"],
        "text_tokens": a.text_tokens,
        "probe_keeps": a.probe_keeps,
    }
    m = run_meta(root, torch, device, **fields)
    from comfyui_tape.tape_core import TapeConfig

    m["tape_config"] = repr(TapeConfig())
    return m


def summary_text(res: dict) -> str:
    m, s = res["meta"], res.get("summary", {})
    lines = [f"== {m['family']} {m['size']} {m['video']} ({m.get('video_tokens')} tokens), {m.get('gpu', 'cpu')}"]
    if s:
        lines.append(
            f"unpruned {s['unpruned_s']:.2f}s, TAPE default {s['tape_s']:.2f}s: {s['speedup']:.2f}x ({s['source']})"
            + f"; peak GB {s.get('peak_gb')}"
        )
        lines.append(f"TAPE: {s.get('tape_summary')}")
    for keep, row in res.get("block_times", {}).get("keeps", {}).items():
        c = row.get("ceiling")
        lines.append(
            f"keep {keep}: pruned block x{row.get('speedup', float('nan')):.2f} "
            f"(kept rows only x{row.get('speedup_kept_rows_only', float('nan')):.2f})"
            + (f", ceiling x{c:.2f} -> {100 * row['of_ceiling']:.0f}%" if c and "of_ceiling" in row else "")
        )
    if res.get("composition_check"):
        lines.append(f"composed / measured: {res['composition_check']}")
    if res.get("errors"):
        lines.append(f"errors: {list(res['errors'])}")
    return "\n".join(lines)


# ---- report ----------------------------------------------------------------------------------------------
MODEL_NAMES = {("hunyuan", "13b"): "HunyuanVideo 13B", ("ltxv", "2b"): "LTX-Video 2B", ("ltxv", "13b"): "LTX-Video 13B"}


def _keep_rows(res: dict) -> list[tuple[str, dict]]:
    """Block rows by keep, the aggregate recomputed from the per-kind medians (results written before that change
    stored a sum over every block call, which the block that met a new shape first dominates)."""
    bt = res.get("block_times", {})
    out = []
    for keep, row in sorted(bt.get("keeps", {}).items(), key=lambda kv: -float(kv[0])):
        row = {**row, **aggregate(row["kinds"], bt["dense_ms"])}
        if row.get("ceiling"):
            row["of_ceiling"] = row["speedup"] / row["ceiling"]
        out.append((keep, row))
    return out


def _ceiling_text(row: dict) -> str:
    c = row.get("ceiling")
    return f"{row['speedup']:.2f}x" + (f" of {c:.2f}x ({100 * row['of_ceiling']:.0f}%)" if c else "")


def report_text(results: list[dict]) -> str:
    lines = [
        "| model, video | video tokens | dense step (run) | TAPE default run | end-to-end | pruned block vs ceiling "
        "(keep 0.75 / 0.5 / 0.3) | peak VRAM unpruned / TAPE |",
        "|---|---|---|---|---|---|---|",
    ]
    detail = [
        "| model, video | batch | keep | dense block ms | TAPE pruned block ms | speed-up | ceiling | of ceiling "
        "| block on kept rows only | gather+scatter |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = float("nan")
    for res in results:
        m, s = res["meta"], res.get("summary", {})
        name = f"{MODEL_NAMES.get((m['family'], m['size']), m['size'])}, {m['video']}"
        comp, rows = res.get("composed", {}), res.get("rows", {})
        dense_run = rows.get("unpruned", {}).get("wall_s")
        dense = f"{comp.get('t_dense_step_ms', nan) / 1e3:.2f} s ({dense_run or s.get('unpruned_s', nan):.1f} s"
        dense += ", measured)" if dense_run else ", composed)"
        tape = f"{s.get('tape_s', nan):.1f} s ({s.get('source', '-')})"
        again = rows.get("tape_default_again", {}).get("wall_s")
        if again:
            tape += f"; again {again:.1f} s"
        blocks = " / ".join(_ceiling_text(row) for _, row in _keep_rows(res))
        peak = s.get("peak_gb", {})
        u, t = peak.get("unpruned"), peak.get("tape_default")
        vram = f"{u:.2f} / {t:.2f} GB (+{100 * (t / u - 1):.1f}%)" if u and t else "-"
        if s.get("peak_source"):
            vram += " (probes)"
        lines.append(
            f"| {name} | {m.get('video_tokens', 0):,} | {dense} | {tape} | **{s.get('speedup', nan):.2f}x** "
            f"| {blocks} | {vram} |"
        )
        batch = res.get("probe_dense", {}).get("block_batches") or ["-"]
        dense_ms = res.get("block_times", {}).get("dense_ms", {})
        for keep, row in _keep_rows(res):
            c = row.get("ceiling")
            for kind, k in row["kinds"].items():
                label = name if len(row["kinds"]) == 1 else f"{name} ({kind.replace('_block', '')})"
                of = f"{c:.2f}x | {100 * k['speedup'] / c:.0f}%" if c else "- | -"
                detail.append(
                    f"| {label} | {batch[0]} | {keep} | {dense_ms.get(kind, nan):.2f} | {k['pruned_ms']:.2f} "
                    f"| {k['speedup']:.2f}x | {of} | {k['speedup_kept_rows_only']:.2f}x "
                    f"| {k['gather_scatter_ms']:.2f} ms |"
                )
    return "\n".join(lines) + "\n\n" + "\n".join(detail)


if __name__ == "__main__":
    main()
