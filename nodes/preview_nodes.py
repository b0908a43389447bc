"""TAPE Mask Preview: which tokens the last run kept, drawn over the decoded video."""

import logging

import torch
from comfy_api.latest import io

from ..integration.patcher import last_run
from .patch_nodes import errors_named

log = logging.getLogger("TAPE")


def kept_mask(record, step: int, block: int) -> tuple[torch.Tensor, int, int]:
    """[F, H, W] bool (True = computed) of the video token grid at (step, block), with the step and span used.
    step -1 / block -1: the last pruned step / the first pruned block."""
    pruned_blocks = [i for i, r in enumerate(record.roles) if r == "prune"]
    if block < 0:
        block = pruned_blocks[0]
    if not 0 <= block < len(record.roles):
        raise ValueError(f"block must be in [-1, {len(record.roles) - 1}] (this model's blocks), got {block}")
    if record.roles[block] != "prune":
        raise ValueError(f"block {block} is not pruned ({record.roles[block]}); pruned blocks: {pruned_blocks}")
    span = record.spans[block]
    steps = sorted(s for s, sp in record.kept if sp == span)
    if step < 0:
        step = steps[-1]
    if step not in steps:
        raise ValueError(f"step {step} pruned nothing in the last run; pruned steps: {steps}")
    kept = record.kept[(step, span)][0].long()  # the first video of the batch
    f, h, w = record.grid
    mask = torch.zeros(f * h * w, dtype=torch.bool)
    mask[kept] = True
    return mask.view(f, h, w), step, span


def overlay(images: torch.Tensor, mask: torch.Tensor, n_lead: int) -> torch.Tensor:
    """images [N, H, W, 3] in [0, 1]; mask [F, h, w] of the pruned grid; n_lead protected latent frames before it
    (always computed). Latent frame of image i: ceil(i / r), r = (N - 1) / (F_all - 1) (causal video VAEs: frame 0
    alone, then r images per latent frame). Pruned tokens are dimmed and tinted red."""
    n, hi, wi, _ = images.shape
    full = torch.cat([torch.ones(n_lead, *mask.shape[1:], dtype=torch.bool), mask]) if n_lead else mask
    f_all = full.shape[0]
    r = (n - 1) / max(1, f_all - 1)
    idx = [min(f_all - 1, int(-(-i // r)) if r > 0 else 0) for i in range(n)]
    per_image = full[idx].float()[:, None]  # [N, 1, h, w]
    up = torch.nn.functional.interpolate(per_image, size=(hi, wi), mode="nearest")[:, 0, :, :, None]
    tint = torch.tensor([1.0, 0.15, 0.15])
    return images * up + (images * 0.35 + tint * 0.25) * (1 - up)


class TAPEMaskPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPEMaskPreview",
            display_name="TAPE Mask Preview",
            category="TAPE",
            description="Shows which tokens TAPE computed in the last run: pruned tokens are dimmed red on the "
            "decoded video. Connect the MODEL from TAPE Patch Model and the decoded IMAGE of the same run.",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL output of the TAPE Patch Model node the sampler used."),
                io.Image.Input("images", tooltip="The decoded video of that run (VAE Decode's IMAGE)."),
                io.Int.Input(
                    "step", default=-1, min=-1, max=1000, tooltip="Sampling step (0-based); -1 = the last pruned step."
                ),
                io.Int.Input(
                    "block",
                    default=-1,
                    min=-1,
                    max=1000,
                    tooltip="Transformer block (0-based, in the "
                    "model's order); -1 = the first pruned block. Blocks of one reselection span share "
                    "their kept set.",
                ),
            ],
            outputs=[io.Image.Output(tooltip="The video with the pruned tokens dimmed red.")],
        )

    @classmethod
    def execute(cls, model, images, step, block) -> io.NodeOutput:
        with errors_named("TAPE Mask Preview"):
            record = last_run(model)
            if record is None or not record.kept:
                # TAPE bypassed or off (a user comparing with the unpruned video), or not the sampler's model: say so
                # and show the video as it is
                log.warning(
                    "TAPE Mask Preview: no pruned TAPE run for this model (TAPE Patch Model bypassed or off, nothing "
                    "pruned, or not the MODEL the sampler used): showing the video unmarked"
                )
                return io.NodeOutput(images)
            mask, _, _ = kept_mask(record, step, block)
            per_frame = record.grid[1] * record.grid[2]
            n_lead = record.n_prefix // per_frame if per_frame and record.n_prefix % per_frame == 0 else 0
            return io.NodeOutput(overlay(images.float().cpu(), mask, n_lead).clamp(0, 1))
