"""Fidelity against compute: PSNR and temporal error of the keep sweeps and EasyCache (docs/fidelity_frontier.png).

    python research/fidelity/fidelity.py --gpu --ckpt testbed/TAPE_demo_toy_model_16blocks.safetensors \
        --out results/fidelity16.json
    python research/fidelity/frontier_plot.py results/fidelity16.json --out docs/fidelity_frontier.png

Needs matplotlib (not a dependency of the pack).
"""

import argparse
import json
import re

FAMILIES = {  # row-name prefix -> (label, style); "new default" = "TAPE ranking" in the 2026-11-25 table
    "sweep default keep": ("random selection, reuse + blend (default)", "*-"),
    "sweep TAPE ranking keep": ("TAPE ranking + rotation, reuse + blend", "o-"),
    "sweep new default keep": ("TAPE ranking + rotation, reuse + blend", "o-"),
    "sweep old default keep": ("TAPE ranking, nearest (default of 0.1)", "s--"),
    "sweep random reuse keep": ("random selection, reuse (the control)", "^:"),
}
POINTS = {  # single rows -> (label, style)
    "control: random selection, reuse + blend": ("random selection, reuse + blend (default of 0.2)", "*"),
}


def curves(summary: dict) -> dict:
    out = {}
    for prefix, (label, style) in FAMILIES.items():
        pts = [(m["compute"], m["psnr"], m["temporal_err"]) for n, m in summary.items() if n.startswith(prefix)]
        if pts:
            out[label] = (style, sorted(pts))
    easy = [  # a threshold that skipped no step gives the unpruned video itself (99 dB): not a point on the curve
        (m["compute"], m["psnr"], m["temporal_err"])
        for n, m in summary.items()
        if re.match(r"EasyCache", n) and m.get("compute") == m.get("compute") and m["compute"] < 0.99
    ]
    if easy:
        out["EasyCache (skips whole steps)"] = ("D-.", sorted(easy))
    for name, (label, style) in POINTS.items():
        m = summary.get(name)
        if m:
            out[label] = (style, [(m["compute"], m["psnr"], m["temporal_err"])])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="fidelity JSON files (one panel row each)")
    p.add_argument("--out", default="docs/fidelity_frontier.png")
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(a.results), 2, figsize=(11, 4.2 * len(a.results)), squeeze=False)
    for row, path in zip(axes, a.results):
        res = json.load(open(path))
        summary, meta = res["summary"], res.get("meta", {})
        n = len(next(iter(res["samples"].values())))
        steps, cfg = meta.get("steps", "?"), meta.get("cfg", 4)
        title = f"{meta.get('ckpt', path)}: {n} clips per point, {steps} steps, CFG {cfg}"
        for label, (style, pts) in curves(summary).items():
            x = [c for c, _, _ in pts]
            size = 16 if style == "*" else 6
            row[0].plot(x, [q for _, q, _ in pts], style, label=label, markersize=size)
            row[1].plot(x, [t for _, _, t in pts], style, label=label, markersize=size)
        seed = summary.get("scale: unpruned, another seed")
        if seed:
            row[0].axhline(seed["psnr"], color="grey", lw=1, label="another seed, unpruned (scale)")
            row[1].axhline(seed["temporal_err"], color="grey", lw=1, label="another seed, unpruned (scale)")
        row[0].set_ylabel("PSNR vs unpruned, dB (higher is better)")
        row[1].set_ylabel("temporal error vs unpruned (lower is better)")
        for ax in row:
            ax.set_xlabel("share of block compute spent (1 = unpruned)")
            ax.grid(alpha=0.3)
            ax.set_title(title, fontsize=9)
        row[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
