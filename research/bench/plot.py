"""PNG: pruned-block speed-up vs keep ratio, TAPE's path against the ceiling (shared/notes/cost-model.md).

python -m research.bench.plot research/bench/results/gpu_1.3b.json research/bench/results/gpu_14b.json \
    --out docs/bench_block_speedup.png
"""

from __future__ import annotations

import argparse
import json

from .report import CEILING

COLORS = {("1.3b", "480p"): "tab:blue", ("14b", "480p"): "tab:orange", ("14b", "720p"): "tab:green"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results", nargs="+")
    p.add_argument("--out", default="docs/bench_block_speedup.png")
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    device = ""
    for path in a.results:
        res = json.loads(open(path).read())
        model = res["meta"]["model"]
        device = res["meta"].get("gpu", res["meta"]["device"])
        for r, sec in res["resolutions"].items():
            if "blocks" not in sec:
                continue
            col = COLORS.get((model, r), "tab:gray")
            keeps = sorted(float(k) for k in sec["blocks"]["keeps"])
            val = [sec["blocks"]["keeps"][str(k)] for k in keeps]
            label = f"Wan {model} {r}"
            ax.plot(keeps, [v["speedup_tape"] for v in val], "o-", color=col, label=f"{label}: TAPE pruned block")
            ax.plot(
                keeps,
                [v["speedup_bare"] for v in val],
                ":",
                color=col,
                alpha=0.7,
                label=f"{label}: block on kept tokens only",
            )
            ceil = CEILING.get((model, r))
            if ceil:
                ck = sorted(ceil)
                ax.plot(
                    ck,
                    [ceil[k] for k in ck],
                    "s--",
                    color=col,
                    alpha=0.5,
                    mfc="none",
                    label=f"{label}: ceiling (cost model)",
                )
    ax.set_xlabel("keep ratio r (share of each frame's tokens computed)")
    ax.set_ylabel("block speed-up vs dense block")
    ax.set_yscale("log")
    ax.set_yticks([1, 1.5, 2, 3, 4, 6, 8, 10])
    ax.get_yaxis().set_major_formatter(matplotlib.ticker.FormatStrFormatter("%gx"))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"Wan block speed-up vs keep ratio\n{device}, fp16, cond+uncond batch of 2", fontsize=11)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
