"""The one place TAPE touches ComfyUI's patching API.

apply_tape(model, config) clones the ModelPatcher and installs, through supported seams only:
- an OUTER_SAMPLE wrapper: fresh per-run state for every sampler call, released (and summarised) at its end;
- a DIFFUSION_MODEL wrapper: the token grid and the step's budget for each model call;
- patches_replace["dit"] block replaces on the blocks that score or prune (pre-existing replaces are chained).
The input ModelPatcher is never modified. Nothing here holds tensors in model_options.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import comfy.model_patcher
import comfy.patcher_extension
from comfy.patcher_extension import WrappersMP

from ..tape_core import BlockPlan, TapeConfig
from . import ui_events
from .adapters import adapter_for
from .adapters.base import VideoDiTAdapter
from .runtime import CALL_KEY, RUN_KEY, RunHistory, RunRecord, TapeBlockPatch, TapeRun

log = logging.getLogger("TAPE")

SPEC_KEY = "tape_spec"  # transformer_options key of the (tensor-free) TapeSpec
WRAPPER_KEY = "tape"


@dataclass(frozen=True)
class TapeSpec:
    config: TapeConfig
    plan: BlockPlan
    adapter: VideoDiTAdapter
    node_id: str | None = None  # the TAPE Patch Model node that made it (where the UI shows the run's summary)
    history: RunHistory = field(default_factory=RunHistory)  # shared by every copy: the last finished run


def diffusion_model_of(model):
    """The diffusion model module of a ModelPatcher, or ValueError naming the input."""
    inner = getattr(model, "model", None)
    dm = getattr(inner, "diffusion_model", None)
    if dm is None:
        raise ValueError("model: expected a diffusion MODEL (the output of a model loader), got something else")
    return dm


def plan_for(model, config: TapeConfig) -> tuple[BlockPlan, object]:
    """Validate config against the model (raises ValueError naming the input) and build the block plan."""
    adapter = adapter_for(diffusion_model_of(model))
    return config.reselect.plan(len(adapter.blocks), dense_scoring=config.score != "random"), adapter


def apply_tape(model, config: TapeConfig, node_id: str | None = None):
    """Return a patched clone of `model` (a ModelPatcher). A no-op config returns a plain clone. A TAPE patch the
    model already carries (an earlier TAPE node) is removed first: the new settings replace it, never stack.
    node_id: the UI node to send each run's summary to."""
    plan, adapter = plan_for(model, config)
    m = model.clone()
    if remove_tape(m):
        log.info("TAPE: the model already had a TAPE patch from an earlier node; these settings replace it")
    if config.is_noop:
        return m
    to = m.model_options["transformer_options"]
    to[SPEC_KEY] = TapeSpec(config, plan, adapter, node_id)
    m.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, tape_outer_sample_wrapper)
    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, tape_diffusion_model_wrapper)
    existing = to.get("patches_replace", {}).get("dit", {})
    for i, role in enumerate(plan.roles):
        if role.value == "dense":
            continue
        kind, n = adapter.blocks[i]
        m.set_model_patch_replace(TapeBlockPatch(i, kind, existing.get((kind, n))), "dit", kind, n)
    return m


def remove_tape(m) -> bool:
    """Take an earlier TAPE patch off the clone `m`: its spec, its wrappers, and its block replaces (restoring the
    replaces they had chained). Returns whether there was one."""
    to = m.model_options.get("transformer_options", {})
    if to.pop(SPEC_KEY, None) is None:
        return False
    for wrapper_type in (WrappersMP.OUTER_SAMPLE, WrappersMP.DIFFUSION_MODEL):
        m.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
    dit = to.get("patches_replace", {}).get("dit", {})
    for key, patch in list(dit.items()):
        if getattr(patch, "is_tape", False):
            if patch.prev is None:
                del dit[key]
            else:
                dit[key] = patch.prev
    return True


def last_run(model) -> RunRecord | None:
    """The last finished run of the TAPE patch `model` carries; None when it carries none or has not run yet."""
    spec = model.model_options.get("transformer_options", {}).get(SPEC_KEY) if hasattr(model, "model_options") else None
    return None if spec is None else spec.history.last


def _transformer_options(args, kwargs) -> dict | None:
    t_opts = args[-1] if args and isinstance(args[-1], dict) else kwargs.get("transformer_options")
    if not isinstance(t_opts, dict) and len(args) > 1 and isinstance(args[-2], dict):
        t_opts = args[-2]  # LTXV passes it second to last
    return t_opts if isinstance(t_opts, dict) else None


def tape_outer_sample_wrapper(executor, *args, **kwargs):
    """Fresh TapeRun per sampler call (EasyCache's pattern); summary and release in `finally`."""
    guider = executor.class_obj
    orig_model_options = guider.model_options
    run = None
    try:
        guider.model_options = comfy.model_patcher.create_model_options_clone(orig_model_options)
        to = guider.model_options["transformer_options"]
        spec: TapeSpec = to[SPEC_KEY]
        ms = guider.model_patcher.model.model_sampling
        cfg = spec.config
        run = TapeRun(
            spec, ms.percent_to_sigma(cfg.start_percent), ms.percent_to_sigma(cfg.end_percent), float(ms.sigma_max)
        )
        to[RUN_KEY] = run
        return executor(*args, **kwargs)
    finally:
        if run is not None:
            run.stats.finish()
            log.info(run.summary(), extra={"tape_stats": run.stats})
            hint = run.pruned_nothing_hint()
            if hint:
                log.warning(hint)
            record = run.record()
            run.spec.history.last = record
            ui_events.run_finished(run.spec.node_id, record, hint)
            run.release()
        guider.model_options = orig_model_options


def tape_diffusion_model_wrapper(executor, *args, **kwargs):
    """Plan this model call (step, budget, token grid) for the block patches; glue only."""
    t_opts = _transformer_options(args, kwargs)
    run: TapeRun | None = t_opts.get(RUN_KEY) if t_opts is not None else None
    if run is None:
        return executor(*args, **kwargs)
    call = run.plan_call(args[0], t_opts, run.spec.adapter.layout(args, kwargs))
    t_opts[CALL_KEY] = call
    try:
        return executor(*args, **kwargs)
    finally:
        t_opts.pop(CALL_KEY, None)
        if call.mode in ("prune", "record") and call.blocks_run == 0:
            if _forward_replaced(executor.class_obj):
                _warn_blocks_bypassed(run, executor.class_obj)
                call.mode = "dense"  # nothing was pruned: count it as what ran
            else:  # another wrapper answered this call without running the blocks (EasyCache skipping a step)
                call.mode = "off"
        run.account(call)


def _forward_replaced(diffusion_model) -> list[str]:
    """Names of the model's forward methods another node replaced on the instance (ComfyUI-TeaCache does this)."""
    return [n for n in ("forward", "_forward", "forward_orig") if n in vars(diffusion_model)]


def _warn_blocks_bypassed(run: TapeRun, diffusion_model):
    """TAPE planned this call but none of its block patches ran: another node replaced the model's forward with
    its own copy that skips ComfyUI's block-patch seam (ComfyUI-TeaCache does this for Wan, HunyuanVideo, LTX)."""
    replaced = _forward_replaced(diffusion_model)
    who = f"'{', '.join(replaced)}' of the model was replaced by another node" if replaced else "the blocks ran"
    run.warn_once(
        "bypassed",
        f"TAPE's block patches did not run ({who} without ComfyUI's block-patch seam; TeaCache-style nodes do "
        "this), so TAPE pruned nothing. Use TAPE or that node, not both.",
    )
