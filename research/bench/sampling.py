"""Timed sampling through ComfyUI's real path: ModelPatcher + comfy.sample (KSampler / SamplerCustom code),
CFG > 1 so cond and uncond run as one batch of 2, per-step times from step-boundary events.

Two ways to run:
- run_ksampler: the full KSampler run (every step), as a user's workflow runs it.
- run_steps: SamplerCustom with the FULL sigma list of the step count, but a sampler that evaluates only chosen
  step indices (Euler between them). TAPE reads the step index from `sample_sigmas`, so each evaluated step gets
  exactly the keep ratio it has in the full run. Used to price single steps of the 14B model.
"""

from __future__ import annotations

import re
import time

import torch

SAMPLER, SCHEDULER, CFG, STEPS = "euler", "simple", 5.0, 30
EASYCACHE_RE = re.compile(r"skipped (\d+)/(\d+) steps")


class Probe:
    """Host-side bookkeeping of one sampling run. Nothing here reads a GPU value during the run."""

    active: Probe | None = None

    def __init__(self, clock):
        self.clock = clock
        self.marks = []  # (step index, event) at each sampler callback
        self.executed = 0  # model calls that reached block 0 (EasyCache skips never do)
        self.executed_at = []  # executed count at each callback
        self.batches = set()
        self.cache_bytes = 0

    def start(self):
        self.start_mark = self.clock.mark()

    def callback(self, step, x0, x, total):
        self.marks.append((int(step), self.clock.mark()))
        self.executed_at.append(self.executed)

    def steps(self) -> list[dict]:
        out, prev, prev_exec = [], self.start_mark, 0
        for (i, m), ex in zip(self.marks, self.executed_at):
            out.append({"step": i, "ms": self.clock.ms(prev, m), "executed": ex - prev_exec})
            prev, prev_exec = m, ex
        return out


def _block0_hook(module, args):
    if Probe.active is not None:
        Probe.active.executed += 1
        if args:
            Probe.active.batches.add(int(args[0].shape[0]))


def _probe_wrapper(executor, *args, **kwargs):
    """Outermost DIFFUSION_MODEL wrapper: after each call, note the size of TAPE's reuse cache (host metadata)."""
    out = executor(*args, **kwargs)
    probe = Probe.active
    t_opts = args[-1] if args and isinstance(args[-1], dict) else kwargs.get("transformer_options", {})
    run = t_opts.get("tape_run") if isinstance(t_opts, dict) else None
    if probe is not None and run is not None:
        on_gpu = [c for c in run.reuse_cache.values() if c.device.type != "cpu"]
        probe.cache_bytes = max(probe.cache_bytes, sum(c.nbytes for c in on_gpu))
    return out


def probed_base(model):
    """A clone of the loaded model with the probe wrapper first (outermost); every row is built from it."""
    from comfy.patcher_extension import WrappersMP

    m = model.clone()
    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "bench_probe", _probe_wrapper)
    return m


@torch.no_grad()
def sample_steps_euler(model, x, sigmas, extra_args=None, callback=None, disable=None, run_steps=()):
    """k-diffusion style sampler that evaluates the model only at `run_steps` (indices into the full sigmas)."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    for i in run_steps:
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
    return x


def _run(model, latent, conds, clock, cap, body, hook=True) -> dict:
    import comfy.sample

    pos, neg = conds
    noise = comfy.sample.prepare_noise(latent, 0)
    dm = model.model.diffusion_model
    handle = dm.blocks[0].register_forward_pre_hook(_block0_hook) if hook else None
    probe = Probe(clock)
    Probe.active = probe
    if clock.cuda:
        torch.cuda.reset_peak_memory_stats()
    mark = cap.mark()
    try:
        clock.sync()
        t0 = time.perf_counter()
        probe.start()
        out = body(comfy.sample, noise, pos, neg, probe)
        clock.sync()
        wall = time.perf_counter() - t0
    finally:
        Probe.active = None
        if handle is not None:
            handle.remove()
    return summarize(probe, cap.since(mark), out, wall, clock)


def run_ksampler(model, latent, conds, clock, cap, steps=STEPS, hook=True) -> dict:
    def body(cs, noise, pos, neg, probe):
        return cs.sample(
            model,
            noise,
            steps,
            CFG,
            SAMPLER,
            SCHEDULER,
            pos,
            neg,
            latent,
            callback=probe.callback,
            disable_pbar=True,
            seed=0,
        )

    return _run(model, latent, conds, clock, cap, body, hook)


def run_steps(model, latent, conds, clock, cap, run_steps_idx, steps=STEPS) -> dict:
    import comfy.samplers

    def body(cs, noise, pos, neg, probe):
        sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), SCHEDULER, steps)
        sampler = comfy.samplers.KSAMPLER(sample_steps_euler, extra_options={"run_steps": tuple(run_steps_idx)})
        return cs.sample_custom(
            model, noise, CFG, sampler, sigmas, pos, neg, latent, callback=probe.callback, disable_pbar=True, seed=0
        )

    return _run(model, latent, conds, clock, cap, body)


def summarize(probe: Probe, records, out, wall, clock) -> dict:
    row = {
        "wall_s": wall,
        "steps": probe.steps(),
        "batches": sorted(probe.batches),
        "output_finite": bool(torch.isfinite(out).all()),
        "reuse_cache_gb": probe.cache_bytes / 2**30,
    }
    if clock.cuda:
        row["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
    for r in records:
        msg = r.getMessage()
        stats = getattr(r, "tape_stats", None)
        if stats is not None:
            row["tape"] = {
                "summary": msg,
                "steps_seen": len(stats.steps_seen),
                "steps_pruned": len(stats.steps_pruned),
                "mean_kept": sum(stats.kept_fracs) / len(stats.kept_fracs) if stats.kept_fracs else 1.0,
                "flops_saved": stats.flops_saved,
                "jitter": stats.mean_jitter,
            }
        m = EASYCACHE_RE.search(msg)
        if m and "EasyCache" in msg:
            row["easycache_skipped"] = int(m.group(1))
        if "loaded partially" in msg:
            row["loaded_partially"] = True
        if "TAPE" in msg and r.levelname == "WARNING":
            row.setdefault("tape_warnings", []).append(msg)
    return row
