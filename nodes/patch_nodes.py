"""TAPE Patch Model and its optional settings nodes: Budget Schedule, Layer Reselect, Advanced Options."""

from contextlib import contextmanager

from comfy_api.latest import io

from ..integration.patcher import apply_tape
from ..tape_core import SCORE_METHODS, BudgetSchedule, ReselectPolicy, TapeConfig
from ..tape_core.config import CACHE_DEVICES, PRUNED_MODES
from ..tape_core.plan import parse_block_list
from ..tape_core.schedule import MIN_KEEP, SCHEDULE_PRESETS, parse_ratio_list

ScheduleType = io.Custom("TAPE_SCHEDULE")
ReselectType = io.Custom("TAPE_RESELECT")
OptionsType = io.Custom("TAPE_OPTIONS")
_FROM_RESELECT = ("reselect_blocks", "reselect_every", "dense_first_blocks", "dense_last_blocks")


@contextmanager
def errors_named(node: str):
    """Bad input raises ValueError naming the input and its allowed range; say which node it was typed into."""
    try:
        yield
    except ValueError as e:
        msg = str(e)
        if node == "TAPE Patch Model" and msg.startswith(_FROM_RESELECT):
            msg = f"the reselect input (from TAPE Layer Reselect): {msg}"
        raise ValueError(f"{node}: {msg}") from None


class TAPEPatchModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPEPatchModel",
            display_name="TAPE Patch Model",
            category="TAPE",
            description="Speeds up native video models (Wan 2.1 / 2.2, HunyuanVideo, LTX-Video) by pruning video "
            "tokens in most transformer blocks (TAPE: temporal-aware pruning). Put it after LoRA and model sampling "
            "nodes, right before the sampler.",
            inputs=[
                io.Model.Input("model", tooltip="A native video model: Wan 2.1 / 2.2, HunyuanVideo or LTX-Video."),
                io.Float.Input(
                    "keep_ratio",
                    default=0.5,
                    min=MIN_KEEP,
                    max=1.0,
                    step=0.01,
                    tooltip="Share of each frame's tokens the pruned blocks compute (0.05-1), averaged over the "
                    "pruned steps. Lower is faster; 1 turns TAPE off. 0.5 is the measured default; if you see "
                    "artifacts, raise it (0.6-0.7).",
                ),
                io.Boolean.Input(
                    "enabled", default=True, tooltip="Off returns the input model untouched (same output bit for bit)."
                ),
                ScheduleType.Input(
                    "schedule",
                    optional=True,
                    tooltip="Budget over sampling steps from TAPE Budget Schedule. Default: 1 dense warm-up step "
                    "(at keep 0.75 when the sampler resumes a partly denoised latent), then linear, spread 0.2.",
                ),
                ReselectType.Input(
                    "reselect",
                    optional=True,
                    tooltip="Which blocks reselect tokens / stay dense, from TAPE Layer Reselect. Default: reselect "
                    "every 20 blocks, first block dense.",
                ),
                OptionsType.Input(
                    "options",
                    optional=True,
                    tooltip="Selection and cache settings from TAPE Advanced Options (score, pruned tokens' "
                    "update, cache device, active range). Default: the measured defaults.",
                ),
            ],
            outputs=[io.Model.Output(tooltip="The model with TAPE applied (a patched clone).")],
            hidden=[io.Hidden.unique_id],  # each run's summary is shown on this node
        )

    @classmethod
    def execute(cls, model, keep_ratio, enabled=True, schedule=None, reselect=None, options=None) -> io.NodeOutput:
        if not enabled:
            return io.NodeOutput(model)
        with errors_named("TAPE Patch Model"):
            config = TapeConfig(
                keep_ratio=keep_ratio,
                schedule=schedule or BudgetSchedule(),
                reselect=reselect or ReselectPolicy(),
                **dict(options or {}),
            )
            node_id = cls.hidden.unique_id if cls.hidden else None
            return io.NodeOutput(apply_tape(model, config, node_id=node_id))


class TAPEAdvancedOptions(io.ComfyNode):
    """The settings most users never change; each default is the best measured (BENCHMARKS.md, fidelity tables)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPEAdvancedOptions",
            display_name="TAPE Advanced Options",
            category="TAPE",
            description="How TAPE chooses the kept tokens and what pruned tokens get. The defaults are the best "
            "measured; connect to TAPE Patch Model's options input to change them.",
            inputs=[
                io.Combo.Input(
                    "score",
                    options=list(SCORE_METHODS),
                    default="random",
                    tooltip="How the kept tokens are chosen. random (best measured with reuse): a fresh draw every "
                    "step, so every token is recomputed every few steps. attention: the paper's TAPE ranking, "
                    "attention received, smoothed across frames (smoothing) and rotated across steps (rotation). "
                    "key_norm: a cheap importance proxy.",
                ),
                io.Float.Input(
                    "smoothing",
                    default=0.5,
                    min=0.05,
                    max=1.0,
                    step=0.05,
                    tooltip="Temporal smoothing a of token importance across frames: s~[f] = a*s[f] + "
                    "(1-a)*s~[f-1]. Lower = steadier selection; 1 = none. The paper uses 0.5. For attention and "
                    "key_norm scores (a random draw is not smoothed).",
                ),
                io.Float.Input(
                    "rotation",
                    default=1.0,
                    min=0.0,
                    max=10.0,
                    step=0.1,
                    tooltip="How fast the kept set rotates across steps: a token gains this much priority (in units "
                    "of its importance rank in the frame) per step it is not computed. 0 = the paper's pure ranking "
                    "(measured much worse with reuse). For attention and key_norm scores.",
                ),
                io.Combo.Input(
                    "pruned_mode",
                    options=list(PRUNED_MODES),
                    default="reuse",
                    tooltip="What pruned tokens get in the blocks that leave them out. reuse (best measured): the "
                    "update those blocks computed for each of them the last time it was kept, plus 30% of its "
                    "nearest kept neighbour's fresh one; costs an fp8 cache of one activation per reselection span. "
                    "nearest: the nearest kept token's update, no cache. skip: nothing.",
                ),
                io.Combo.Input(
                    "cache_device",
                    options=list(CACHE_DEVICES),
                    default="gpu",
                    tooltip="Where the reuse cache lives. cpu: in RAM, no extra VRAM and the same video, at the cost "
                    "of PCIe copies every pruned step.",
                ),
                io.Float.Input(
                    "start_percent",
                    default=0.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Sampling progress at which TAPE starts acting (0 = first step).",
                ),
                io.Float.Input(
                    "end_percent",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Sampling progress after which TAPE stops acting (1 = last step).",
                ),
            ],
            outputs=[OptionsType.Output(tooltip="Connect to TAPE Patch Model's options input.")],
        )

    @classmethod
    def execute(
        cls, score, smoothing, rotation, pruned_mode, cache_device, start_percent, end_percent
    ) -> io.NodeOutput:
        options = dict(
            score=score,
            smoothing=smoothing,
            rotation=rotation,
            pruned_mode=pruned_mode,
            cache_device=cache_device,
            start_percent=start_percent,
            end_percent=end_percent,
        )
        with errors_named("TAPE Advanced Options"):
            TapeConfig(**options)  # validate here, where the values were typed
        return io.NodeOutput(options)


class TAPEBudgetSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPEBudgetSchedule",
            display_name="TAPE Budget Schedule",
            category="TAPE",
            description="How the keep ratio changes over sampling steps: prune hard in early noisy steps, "
            "relax while details are refined.",
            inputs=[
                io.Combo.Input(
                    "preset",
                    options=list(SCHEDULE_PRESETS),
                    default="linear",
                    tooltip="constant: keep_ratio every step. linear / cosine / step: from "
                    "keep_ratio - spread (early) to keep_ratio + spread (late), same average. "
                    "custom: the per-step list below.",
                ),
                io.Float.Input(
                    "spread",
                    default=0.2,
                    min=0.0,
                    max=0.5,
                    step=0.01,
                    tooltip="How far the early budget sits below keep_ratio and the late one above.",
                ),
                io.Int.Input(
                    "warmup_steps",
                    default=1,
                    min=0,
                    max=1000,
                    tooltip="Steps at the start that run at warmup_keep (dense by default: they fill the reuse "
                    "cache) before the schedule begins; resume_keep instead when the sampler resumes a partly "
                    "denoised latent. 0: the schedule starts at the first step.",
                ),
                io.Int.Input(
                    "dense_last_steps", default=0, min=0, max=1000, tooltip="Unpruned steps at the end (final detail)."
                ),
                io.String.Input(
                    "custom_ratios",
                    default="",
                    multiline=False,
                    tooltip="For preset 'custom': keep ratios per step, e.g. '0.3, 0.4, 0.5, 0.7'. "
                    "Stretched over the pruned steps when the count differs.",
                ),
                io.Float.Input(
                    "warmup_keep",
                    default=1.0,
                    min=MIN_KEEP,
                    max=1.0,
                    step=0.05,
                    tooltip="Keep ratio of the warm-up steps of a run that starts from noise. 1 (default): dense, "
                    "which fills the reuse cache for every token. 0.75 is faster: about as close to the unpruned "
                    "video at 20-30 steps, measured 0.1-0.5 dB further on the testbed (more in 4-step runs).",
                ),
                io.Float.Input(
                    "resume_keep",
                    default=0.75,
                    min=MIN_KEEP,
                    max=1.0,
                    step=0.05,
                    tooltip="Keep ratio of the warm-up steps when the sampler resumes a partly denoised latent (the "
                    "second KSamplerAdvanced of a two-stage Wan 2.2 graph, or denoise < 1: a first sigma below 0.95 "
                    "of the model's highest; a ddim_uniform schedule of few steps starts that low too), where a dense "
                    "step would be a large part of a short run. 1 = dense, as at a fresh start.",
                ),
            ],
            outputs=[ScheduleType.Output(tooltip="Connect to TAPE Patch Model's schedule input.")],
        )

    @classmethod
    def execute(
        cls, preset, spread, warmup_steps, dense_last_steps, custom_ratios, warmup_keep=1.0, resume_keep=0.75
    ) -> io.NodeOutput:
        with errors_named("TAPE Budget Schedule"):
            custom = parse_ratio_list(custom_ratios) if preset == "custom" else ()
            return io.NodeOutput(
                BudgetSchedule(preset, spread, warmup_steps, dense_last_steps, custom, warmup_keep, resume_keep)
            )


class TAPELayerReselect(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPELayerReselect",
            display_name="TAPE Layer Reselect",
            category="TAPE",
            description="Which transformer blocks re-score tokens and choose a new kept set (they run dense), "
            "and which blocks never prune.",
            inputs=[
                io.Int.Input(
                    "reselect_every",
                    default=20,
                    min=0,
                    max=100,
                    tooltip="Re-score and reselect every N blocks (0 = select once). Each reselection "
                    "block runs dense and each span between two of them holds one cached activation in reuse "
                    "mode: fewer is faster and lighter on VRAM, more follows each depth's focus.",
                ),
                io.String.Input(
                    "reselect_blocks",
                    default="",
                    multiline=False,
                    tooltip="Explicit reselection blocks, e.g. '0, 10, 20' (overrides reselect_every). "
                    "Must exist in the model.",
                ),
                io.Int.Input(
                    "dense_first_blocks",
                    default=1,
                    min=0,
                    max=100,
                    tooltip="Blocks at the start that never prune; the last of them makes the first selection. 0 "
                    "(score random only, which needs no scores): block 0 prunes too, faster, measured further from "
                    "the unpruned video (most in 4-step runs). A scored selection keeps at least block 0 dense.",
                ),
                io.Int.Input(
                    "dense_last_blocks", default=0, min=0, max=100, tooltip="Blocks at the end that never prune."
                ),
            ],
            outputs=[ReselectType.Output(tooltip="Connect to TAPE Patch Model's reselect input.")],
        )

    @classmethod
    def execute(cls, reselect_every, reselect_blocks, dense_first_blocks, dense_last_blocks) -> io.NodeOutput:
        with errors_named("TAPE Layer Reselect"):
            blocks = parse_block_list(reselect_blocks)
            return io.NodeOutput(ReselectPolicy(reselect_every, blocks, dense_first_blocks, dense_last_blocks))
