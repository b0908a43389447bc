"""Do objects and backgrounds move as the prompt says? Block-matching motion of generated clips.

    python -m research.testbed.motion --ckpt testbed/TAPE_demo_toy_model_8blocks.safetensors --seeds 4 \
        [--gpu] [--out m.json]

For every frame pair, each 8x8 block of frame f is matched to frame f+1 over integer shifts of +-4 px; blocks
whose best shift beats staying put by a clear margin are "moving". With the camera static only the object's
blocks move, so the gain-weighted mean of their shifts is the object's velocity. Per clip this gives its
speed along the prompt's direction (px/frame at 64x64) and across it. Camera pans over an empty scene are
measured the same way (every textured block moves; "pan-left" slides the scene right). The same measure on
training clips of the same prompts is the reference (slow objects move 1-1.6 px/frame, fast ones 2.2-3.2,
pans 1.9-4.8).
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F

from . import data, latent

BLOCK = 8
RADIUS = 4
MIN_GAIN = 0.004  # mean squared grey-level gain per pixel for a block to count as moving (frames in [0, 1])
# (prompt, direction the content moves in the frame, group)
OBJECT_CASES = tuple(
    (f"{obj} moving {d} {s} on {scene}, camera static", d, s)
    for obj, scene in (("cat", "brick"), ("rocket", "space"), ("coin", "gravel"), ("astronaut", "grass"))
    for d in ("left", "right", "up", "down")
    for s in ("slow", "fast")
)
PAN_SLIDES = {"pan-left": "right", "pan-right": "left", "pan-up": "down", "pan-down": "up"}
PAN_CASES = tuple(
    (f"{scene}, camera {cam}", slide, "pan")
    for scene in ("brick", "gravel", "grass", "moon")
    for cam, slide in PAN_SLIDES.items()
)
CASES = OBJECT_CASES + PAN_CASES


def block_velocity(frames: torch.Tensor, block: int = BLOCK, radius: int = RADIUS) -> torch.Tensor:
    """frames [F, H, W, 3] in [0, 1] -> velocity [F-1, 2] (dx, dy) in px/frame of the moving blocks (0 if none).

    Frame f's blocks are compared with frame f+1 shifted by (dx, dy): frame f+1 at p + (dx, dy) matching frame f
    at p means the content moved by (dx, dy).
    """
    g = frames.float().mean(-1)  # [F, H, W] grey
    n, h, w = g.shape
    cur = F.unfold(g[:-1, None], block, stride=block)  # [F-1, block*block, nb]
    nxt = F.pad(g[1:, None], (radius,) * 4, mode="replicate")
    shifts, ssd = [], []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            win = nxt[:, :, radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            ssd.append(((F.unfold(win, block, stride=block) - cur) ** 2).mean(1))  # [F-1, nb]
            shifts.append((dx, dy))
    ssd = torch.stack(ssd, -1)  # [F-1, nb, S]
    still = ssd[..., shifts.index((0, 0))]
    best, arg = ssd.min(-1)
    gain = (still - best).clamp(min=0)
    weight = gain * (gain > MIN_GAIN)
    vec = torch.tensor(shifts, dtype=torch.float)[arg]  # [F-1, nb, 2]
    total = weight.sum(1, keepdim=True)
    return (vec * weight[..., None]).sum(1) / total.clamp(min=1e-12) * (total > 0)


def clip_motion(frames: torch.Tensor, direction: str) -> dict:
    """Speed along and across the prompt's direction (px/frame at 64 px), from `block_velocity`.

    frames [F, H, W, 3]; speeds are rescaled to a 64 px frame so clips of other sizes compare.
    """
    d = torch.tensor(data.DIRECTIONS[direction])
    v = block_velocity(frames) * (64 / frames.shape[2])  # [F-1, 2]
    along = v @ d
    across = (v @ torch.stack([-d[1], d[0]])).abs()
    return {
        "along": float(along.mean()),
        "across": float(across.mean()),
        "right_way": float((along > 0.5).float().mean()),  # share of frame pairs moving the asked way
    }


def summarise(rows: list[dict]) -> dict:
    """Mean speed along / across and the right-way share, per group (slow / fast objects, pans)."""
    out = {}
    for key in dict.fromkeys(r["group"] for r in rows):
        sel = [r for r in rows if r["group"] == key]
        out[key] = {m: sum(r[m] for r in sel) / len(sel) for m in ("along", "across", "right_way")}
    return out


def evaluate(ckpt: str, seeds: int, gpu: bool, cases=CASES, **sample_args) -> dict:
    """Sample every case x seed through ComfyUI and measure it; the same prompts' training clips for reference."""
    from . import sample

    if not gpu:
        import comfy.cli_args

        comfy.cli_args.args.cpu = True
    model = sample.load_model(ckpt)
    clips = data.ClipGenerator(anchored_motion=False)
    results = {"model": [], "data": []}
    for i, (prompt, direction, group) in enumerate(cases):
        real = clips.render(data.specs_from_prompts([prompt] * seeds), torch.Generator().manual_seed(i), 16, 64)
        for s in range(seeds):
            lat = sample.sample_latent(model, prompt, seed=1000 * i + s, **sample_args)
            for kind, frames in (("model", latent.decode(lat.cpu())[0]), ("data", real[s])):
                results[kind].append({"prompt": prompt, "seed": s, "group": group, **clip_motion(frames, direction)})
    return {kind: {"summary": summarise(rows), "rows": rows} for kind, rows in results.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default="testbed/TAPE_demo_toy_model_8blocks.safetensors")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--every", type=int, default=1, help="every Nth case (32 object cases, then 16 pans)")
    p.add_argument("--cfg", type=float, default=None)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    t0 = time.time()
    extra = {} if args.cfg is None else {"cfg": args.cfg}
    res = evaluate(args.ckpt, args.seeds, args.gpu, CASES[:: args.every], **extra)
    for kind in ("data", "model"):
        for key, m in res[kind]["summary"].items():
            print(
                f"{kind:5s} {key:5s}  along {m['along']:5.2f} px/frame  across {m['across']:4.2f}  "
                f"right way {m['right_way']:.2f}"
            )
    print(f"{time.time() - t0:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
