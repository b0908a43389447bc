"""A picture of what pruning does on the testbed: the demo workflow's video unpruned and pruned, same seed.

python research/fidelity/compare_grid.py --out docs/fidelity_compare.png
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/fidelity_compare.png")
    p.add_argument("--prompt", default="cat moving right fast on brick, camera pan-left")  # the demo workflow's
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    from comfy_harness import import_comfy, load_pack

    import_comfy()
    load_pack()
    from comfyui_tape.research.testbed import fidelity, latent
    from comfyui_tape.research.testbed.sample import grid_image, load_model, sample_latent
    from comfyui_tape.tape_core import ReselectPolicy, TapeConfig

    model = load_model(str(REPO / "testbed" / "TAPE_demo_toy_model_8blocks.safetensors"))
    demo = ReselectPolicy(every=4)  # the demo workflow's TAPE Layer Reselect node
    rows = [("unpruned (TAPE bypassed)", model)]
    for name, cfg in (
        ("0.1 defaults (attention ranking, nearest)", TapeConfig(**{**fidelity.OLD_DEFAULT, "reselect": demo})),
        ("attention ranking, reuse, no rotation", TapeConfig(reselect=demo, score="attention", rotation=0, blend=0)),
        ("control: random selection, nearest", TapeConfig(reselect=demo, pruned_mode="nearest")),
        ("0.2 defaults (random selection, reuse + blend)", TapeConfig(reselect=demo)),
    ):
        rows.append((name, fidelity.patched(model, fidelity.Variant(name, cfg))))
    videos, labels = [], []
    ref = None
    for name, m in rows:
        video = latent.decode(sample_latent(m, args.prompt, args.seed))[0]
        ref = video if ref is None else ref
        score = (
            "" if video is ref else f"  (PSNR {fidelity.psnr(video, ref):.1f} dB, SSIM {fidelity.ssim(video, ref):.2f})"
        )
        videos.append(video)
        labels.append(f"{name}: {args.prompt}{score}")
        print(labels[-1], flush=True)
    grid_image(videos, labels).save(args.out)


if __name__ == "__main__":
    main()
