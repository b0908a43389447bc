"""Sample the testbed checkpoint through ComfyUI's real sampler path and draw the docs grid.

    python -m research.testbed.sample --ckpt testbed/TAPE_demo_toy_model_8blocks.safetensors \
        --out docs/testbed_samples.png

The path is what a graph runs: `comfy.sd.load_diffusion_model` (UNETLoader), the ModelSamplingSD3 node
(shift), `comfy.sample.sample` with CFG (what KSampler calls), then the inverse latent map.
Needs ComfyUI importable (PYTHONPATH) and, on a machine without a GPU, `--cpu` (the default here).
"""

import argparse
import time

import numpy as np
import torch

from . import latent, vocab

DEFAULT_PROMPTS = (
    "cat moving right fast on brick, camera static",
    "astronaut moving left slow on grass, camera pan-right",
    "rocket moving up fast on space, camera static",
    "coin moving down slow on gravel, camera pan-left",
    "photographer still on coffee, camera zoom-in",
    "moon, camera pan-up",
)
DEFAULTS = {"steps": 20, "cfg": 4.0, "shift": 3.0, "sampler": "euler", "scheduler": "simple"}


def with_shift(model, shift: float):
    """What the ModelSamplingSD3 node does (comfy_extras/nodes_model_advanced.py), on a clone of `model`.

    Re-stated here because importing that module imports ComfyUI's `nodes`, which this pack's own `nodes`
    package shadows when run from the repository root.
    """
    import comfy.model_sampling

    class ModelSamplingAdvanced(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
        pass

    sampling = ModelSamplingAdvanced(model.model.model_config)
    sampling.set_parameters(shift=shift, multiplier=1000)
    m = model.clone()
    m.add_object_patch("model_sampling", sampling)
    return m


def load_model(path: str, shift: float = DEFAULTS["shift"]):
    """UNETLoader's path (`comfy.sd.load_diffusion_model`) plus the shift: a ModelPatcher ready for sampling."""
    import comfy.sd

    return with_shift(comfy.sd.load_diffusion_model(path), shift)


def conditioning(text: str) -> list:
    """What the "TAPE Testbed Prompt" node outputs: [[context [1, TEXT_LEN, 4096], {}]]."""
    return [[vocab.encode(text), {}]]


def sample_latent(
    model,
    prompt: str,
    seed: int,
    frames: int = 16,
    size: int = 64,
    negative: str = "",
    steps: int = DEFAULTS["steps"],
    cfg: float = DEFAULTS["cfg"],
    sampler: str = DEFAULTS["sampler"],
    scheduler: str = DEFAULTS["scheduler"],
) -> torch.Tensor:
    """One KSampler run (txt2vid from an empty latent) -> the LATENT tensor [1, 16, frames, size/2, size/2]."""
    import comfy.sample

    empty = torch.zeros([1, latent.LATENT_CHANNELS, frames, size // 2, size // 2])  # = EmptyHunyuanLatentVideo's
    noise = comfy.sample.prepare_noise(empty, seed)
    return comfy.sample.sample(
        model,
        noise,
        steps,
        cfg,
        sampler,
        scheduler,
        conditioning(prompt),
        conditioning(negative),
        empty,
        denoise=1.0,
        disable_pbar=True,
        seed=seed,
    )


def two_stage_latent(
    models: tuple,
    prompt: str,
    seed: int,
    frames: int = 16,
    size: int = 64,
    steps: int = 4,
    split: int = 2,
    cfg: float = 1.0,
    sampler: str = DEFAULTS["sampler"],
    scheduler: str = DEFAULTS["scheduler"],
) -> torch.Tensor:
    """The Wan 2.2 A14B template's two KSamplerAdvanced stages: models[0] runs steps 0-split (noise added, leftover
    noise returned), models[1] runs split-steps on that latent (no new noise, full denoise). -> LATENT tensor."""
    import comfy.sample

    empty = torch.zeros([1, latent.LATENT_CHANNELS, frames, size // 2, size // 2])
    noise = comfy.sample.prepare_noise(empty, seed)
    common = dict(disable_pbar=True, seed=seed, denoise=1.0)
    pos, neg = conditioning(prompt), conditioning("")
    first = comfy.sample.sample(
        models[0], noise, steps, cfg, sampler, scheduler, pos, neg, empty,
        start_step=0, last_step=split, force_full_denoise=False, **common,
    )  # fmt: skip
    return comfy.sample.sample(
        models[1], torch.zeros_like(first), steps, cfg, sampler, scheduler, pos, neg, first,
        start_step=split, last_step=steps, force_full_denoise=True, **common,
    )  # fmt: skip


def grid_image(videos: list[torch.Tensor], labels: list[str], every: int = 2, scale: int = 2):
    """Rows of frames: videos [F, H, W, 3] in [0, 1], every `every`-th frame, label above each row -> PIL image."""
    from PIL import Image, ImageDraw

    rows = []
    for v in videos:
        frames = v[::every]
        rows.append(torch.cat(list(frames), dim=1))  # [H, F*W, 3]
    h, w = rows[0].shape[0] * scale, max(r.shape[1] for r in rows) * scale
    label_h = 14
    canvas = Image.new("RGB", (w, len(rows) * (h + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (row, label) in enumerate(zip(rows, labels)):
        img = Image.fromarray((row.numpy() * 255).round().astype(np.uint8))
        img = img.resize((row.shape[1] * scale, row.shape[0] * scale), Image.NEAREST)
        y = i * (h + label_h)
        draw.text((2, y + 1), label, fill=(0, 0, 0))
        canvas.paste(img, (0, y + label_h))
    return canvas


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default="testbed/TAPE_demo_toy_model_8blocks.safetensors")
    p.add_argument("--out", default="docs/testbed_samples.png")
    p.add_argument("--prompts", nargs="*", default=list(DEFAULT_PROMPTS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--every", type=int, default=2, help="show every Nth frame")
    p.add_argument("--with-data", action="store_true", help="add a row of training data per prompt above it")
    p.add_argument("--gpu", action="store_true", help="let ComfyUI use a GPU (default: CPU)")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k}", type=type(v), default=v)
    args = p.parse_args(argv)
    if not args.gpu:
        import comfy.cli_args

        comfy.cli_args.args.cpu = True
    model = load_model(args.ckpt, args.shift)
    videos, labels = [], []
    if args.with_data:
        from . import data

        clips = data.ClipGenerator()
        real = clips.render(
            data.specs_from_prompts(args.prompts), torch.Generator().manual_seed(args.seed), args.frames, args.size
        )
    for i, prompt in enumerate(args.prompts):
        if args.with_data:
            videos.append(real[i])
            labels.append(f"training data: {prompt}")
        t0 = time.time()
        lat = sample_latent(
            model,
            prompt,
            args.seed + i,
            args.frames,
            args.size,
            steps=args.steps,
            cfg=args.cfg,
            sampler=args.sampler,
            scheduler=args.scheduler,
        )
        print(f"{time.time() - t0:6.1f} s  {prompt}", flush=True)
        videos.append(latent.decode(lat)[0])
        labels.append(f"sample (seed {args.seed + i}): {prompt}")
    grid_image(videos, labels, every=args.every).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
