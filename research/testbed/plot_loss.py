"""Draw the training loss curve from a run's loss.csv (the last run's file holds the whole history).

python -m research.testbed.plot_loss runs/run2/loss.csv docs/testbed_loss.png --resume-step 2583
"""

import argparse
import csv


def read_loss(path: str) -> tuple[list[int], list[float], list[float]]:
    """(steps, mean losses over each logging window, cumulative training seconds) from a loss.csv."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], [float(r["seconds"]) for r in rows]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv")
    p.add_argument("out")
    p.add_argument("--resume-step", type=int, default=0, help="mark where the second run resumed")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses, seconds = read_loss(args.csv)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.plot(steps, losses, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step (32 clips of 16x64x64, or 114 clips of 8x48x48 every 4th step)")
    ax.set_ylabel("flow-matching MSE (v)")
    ax.set_title(f"TAPE testbed training: {seconds[-1] / 60:.1f} min on one H100, final loss {losses[-1]:.4f}")
    if args.resume_step:
        ax.axvline(args.resume_step, color="gray", ls="--", lw=0.8)
        ax.text(args.resume_step, max(losses), " resumed (run 2)", color="gray", va="top", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
