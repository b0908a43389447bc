"""A picture of what pruning does on the testbed: the unpruned video and TAPE / naive / random rows, same seed.

python scripts/compare_grid.py --out docs/fidelity_compare.png
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/fidelity_compare.png")
    p.add_argument("--prompt", default="rocket moving up fast on space, camera static")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    from comfy_harness import import_comfy, load_pack

    import_comfy()
    load_pack()
    from comfyui_tape.tape_core import TapeConfig
    from comfyui_tape.testbed import fidelity, latent
    from comfyui_tape.testbed.sample import grid_image, load_model, sample_latent

    model = load_model(str(REPO / "testbed" / "tape_testbed_wan.safetensors"))
    naive = next(v for v in fidelity.variants() if v.name.startswith("naive per-frame (attention"))
    rows = [("unpruned", model), ("naive per-frame pruning, keep 0.5", fidelity.patched(model, naive))]
    for keep in (0.5, 0.7):
        rows.append((f"TAPE defaults, keep {keep}", fidelity.patched(model, fidelity.Variant("", TapeConfig(keep)))))
    rows.append(
        (
            "TAPE defaults, keep 0.5, score=random",
            fidelity.patched(model, fidelity.Variant("", TapeConfig(0.5, score="random"))),
        )
    )
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
