"""End-to-end speed-up against fidelity: TAPE's keep sweep and EasyCache's thresholds (docs/speed_vs_fidelity.png).

    python research/fidelity/fidelity.py --ckpt testbed/TAPE_demo_toy_model_16blocks.safetensors --table frontier \
        --steps 20 --cfg 4 --prompts 3 --seeds 1 --frames 8 --size 48 --out results/frontier16_cpu.json
    python research/fidelity/speed_fidelity_plot.py results/frontier16_cpu.json \
        --steps research/bench/results/gpu_1.3b.json --out docs/speed_vs_fidelity.png

y: PSNR of the testbed video against the unpruned one (the testbed is the only trained video model here).
x: Wan 1.3B 480p end-to-end speed-up, COMPOSED from step times measured on an H100 (research/bench, 30 steps,
CFG 5): each step costs the measured time at its keep ratio (linear between measured keeps, dense above 0.75 ... 1),
a skipped step the measured skip time. TAPE's rows use the default schedule's per-step ratios at their base keep;
EasyCache's use the share of steps it skipped on the testbed, spread over 30 steps. Needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def step_time(keep: float, points: dict[float, float], dense_ms: float) -> float:
    """ms of one Wan 1.3B 480p step at a keep ratio: linear between the measured keeps, up to dense at 1."""
    pts = sorted(points.items()) + [(1.0, dense_ms)]
    if keep <= pts[0][0]:
        return pts[0][1] * keep / pts[0][0]
    for (k0, t0), (k1, t1) in zip(pts, pts[1:]):
        if keep <= k1:
            return t0 + (t1 - t0) * (keep - k0) / (k1 - k0)
    return dense_ms


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("fidelity", help="fidelity.py --table frontier JSON")
    p.add_argument("--steps", default="research/bench/results/gpu_1.3b.json", help="bench JSON with step times")
    p.add_argument("--out", default="results/speed_vs_fidelity.png")
    a = p.parse_args()
    sys.path.insert(0, str(REPO.parent))
    sys.path.insert(0, str(REPO))
    from tape_core import BudgetSchedule  # plain PyTorch, no ComfyUI

    fid = json.loads(Path(a.fidelity).read_text())["summary"]
    bench = json.loads(Path(a.steps).read_text())["resolutions"]["480p"]
    comp = bench["composed_ms"]
    points = {float(k): v for k, v in comp["_t_keep_points"].items()}
    dense, skip = comp["_t_dense_ms"], bench["easycache_projection"]["t_skip_ms"]
    n = 30
    unpruned = n * dense
    tape, ec = [], []
    for name, m in fid.items():
        hit = re.match(r"default keep ([\d.]+)", name)
        if hit:
            keep = float(hit.group(1))
            ratios = BudgetSchedule().ratios(n, keep)
            total = sum(dense if r >= 1 else step_time(r, points, dense) for r in ratios)
            tape.append((unpruned / total, m["psnr"], keep))
        hit = re.match(r"EasyCache threshold ([\d.]+)", name)
        if hit and m.get("compute") == m.get("compute"):
            skipped = round((1 - m["compute"]) * n)
            ec.append((unpruned / ((n - skipped) * dense + skipped * skip), m["psnr"], float(hit.group(1))))
    control = fid.get("control: random selection, own update only, keep 0.5", {}).get("psnr")
    seed = fid.get("scale: unpruned, another seed", {}).get("psnr")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for pts, style, label, fmt in ((tape, "o-", "TAPE default, keep", "{:g}"), (ec, "D--", "EasyCache, thr.", "{:g}")):
        pts.sort()
        if pts:
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], style, label=label.split(",")[0])
            for x, y, v in pts:
                ax.annotate(fmt.format(v), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if control is not None:
        base = next((x for x, _, k in tape if k == 0.5), None)
        if base is not None:
            ax.plot([base], [control], "^", color="gray", label="control: random selection, own update only (0.5)")
    if seed is not None:
        ax.axhline(seed, color="gray", lw=1, label="another seed, unpruned (scale)")
    ax.set_xlabel("end-to-end speed-up, Wan 1.3B 480p 30 steps (composed from H100 step times)")
    ax.set_ylabel("PSNR vs unpruned, dB (testbed, 16 blocks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Speed against fidelity: TAPE's keep sweep and EasyCache's thresholds", fontsize=10)
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(json.dumps({"tape": tape, "easycache": ec, "control": control, "another_seed": seed}, indent=1))


if __name__ == "__main__":
    main()
