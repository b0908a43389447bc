"""Why pruned testbed videos drift: how far does the unpruned model move under a tiny perturbation of its
starting noise, and how much do dense early steps help? (BENCHMARKS.md, "Fidelity: sensitivity")

    python research/fidelity/sensitivity.py --prompts 3 --out out/sensitivity.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="out/sensitivity.json")
    p.add_argument("--prompts", type=int, default=3)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--gpu", action="store_true")
    args = p.parse_args()
    from comfy_harness import import_comfy, load_pack

    import_comfy(cpu=not args.gpu)
    load_pack()
    import comfy.sample
    import torch
    from comfyui_tape.integration.patcher import apply_tape
    from comfyui_tape.research.testbed import fidelity, latent
    from comfyui_tape.research.testbed.sample import DEFAULTS, conditioning, load_model
    from comfyui_tape.tape_core import BudgetSchedule, ReselectPolicy, TapeConfig

    model = load_model(str(REPO / "testbed" / "TAPE_demo_toy_model_8blocks.safetensors"))

    def run(m, prompt, noise):
        empty = torch.zeros_like(noise)
        out = comfy.sample.sample(
            m,
            noise,
            args.steps,
            DEFAULTS["cfg"],
            DEFAULTS["sampler"],
            DEFAULTS["scheduler"],
            conditioning(prompt),
            conditioning(""),
            empty,
            disable_pbar=True,
            seed=0,
        )
        return latent.decode(out)[0]

    def tape(dense_steps, keep=0.5, preset="constant"):
        sched = BudgetSchedule(preset=preset, spread=0.2 if preset != "constant" else 0.0, warmup_steps=dense_steps)
        return apply_tape(
            model,
            TapeConfig(
                keep_ratio=keep, smoothing=0.5, pruned_mode="skip", schedule=sched, reselect=ReselectPolicy(every=4)
            ),
        )

    rows = {
        "unpruned, noise + 1% perturbation": None,
        "unpruned, noise + 0.1% perturbation": None,
        **{f"TAPE skip keep 0.5, {d} dense first steps": tape(d) for d in (1, 3, 6, 10)},
        "TAPE skip keep 0.5, linear schedule, 1 dense": tape(1, preset="linear"),
        "TAPE skip keep 0.75, 1 dense first step": tape(1, keep=0.75),
    }
    res = {k: [] for k in rows}
    t0 = time.time()
    for prompt in fidelity.PROMPTS[: args.prompts]:
        empty = torch.zeros([1, 16, args.frames, args.size // 2, args.size // 2])
        noise = comfy.sample.prepare_noise(empty, 1)
        other = comfy.sample.prepare_noise(empty, 999)
        ref = run(model, prompt, noise)
        for name, m in rows.items():
            if m is None:
                eps = 0.01 if "1%" in name else 0.001
                video = run(model, prompt, (noise + eps * other) / (1 + eps**2) ** 0.5)
            else:
                video = run(m, prompt, noise)
            res[name].append(fidelity.compare(video, ref))
        print(prompt, f"{time.time() - t0:.0f} s", flush=True)
    summary = fidelity.summarise(res)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "samples": res, "meta": vars(args)}, indent=1))
    print(fidelity.markdown_table(summary))


if __name__ == "__main__":
    main()
