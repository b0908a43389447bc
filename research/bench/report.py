"""Tables from the benchmark's JSON: a short summary on stdout, and the Markdown of BENCHMARKS.md's GPU section.

python -m research.bench.report research/bench/results/gpu_1.3b.json research/bench/results/gpu_14b.json
(prints BENCHMARKS.md tables)
"""

from __future__ import annotations

import json
import statistics
import sys

# Block speed-up at keep r measured with ComfyUI's own blocks at real sizes (H100, batch 1, naive gather+scatter).
CEILING = {
    ("1.3b", "480p"): {0.75: 1.61, 0.5: 2.93, 0.4: 3.74, 0.3: 5.59, 0.2: 8.07},
    ("14b", "480p"): {0.75: 1.52, 0.5: 2.63, 0.4: 3.45, 0.3: 5.04, 0.2: 7.45},
    ("14b", "720p"): {0.75: 1.66, 0.5: 3.14, 0.4: 4.35, 0.3: 6.48, 0.2: 10.5},
}
ROW_ORDER = (
    "unpruned",
    "tape_keep0.75",
    "tape_keep0.5",
    "tape_keep0.4",
    "tape_keep0.3",
    "tape_default",
    "tape_default_cpucache",
    "tape_default_skip",
    "tape_default_nearest",
    "tape_default_bf16cache",
    "tape_old_default",
    "easycache",
    "tape_default+easycache",
    "easycache_t1.0",
    "tape_default+easycache_t1.0",
    "unpruned_repeat",
)


def _median_later(row) -> float | None:
    ms = [s["ms"] for s in row.get("steps", [])[1:] if s.get("executed", 1)]
    return statistics.median(ms) if ms else None


def e2e_table(sec: dict) -> list[str]:
    rows, comp = sec.get("rows", {}), sec.get("composed_ms", {})
    measured = "unpruned" in rows and "wall_s" in rows["unpruned"]
    base_s = rows["unpruned"]["wall_s"] if measured else comp.get("unpruned", float("nan")) / 1e3
    base_peak = rows.get("unpruned", {}).get("peak_gb") or sec.get("probe_dense", {}).get("peak_gb")
    out = [
        "| row | end-to-end s | speed-up | composed speed-up | step ms (median, pruned steps) | peak GB | "
        "peak vs unpruned | reuse cache GB | EasyCache skipped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ROW_ORDER:
        r = rows.get(name, {})
        c = comp.get(name)
        if "wall_s" not in r and c is None:
            continue
        wall = r.get("wall_s")
        sp = f"{base_s / wall:.2f}x" if wall else "-"
        csp = f"{comp['unpruned'] / c:.2f}x" if c else "-"
        med = _median_later(r)
        peak = r.get("peak_gb")
        dpeak = f"{100 * (peak / base_peak - 1):+.1f}%" if peak and base_peak else "-"
        out.append(
            f"| {name} | {wall if wall is None else round(wall, 1)} | {sp} | {csp} | "
            f"{'-' if med is None else round(med)} | {'-' if peak is None else round(peak, 2)} | {dpeak} | "
            f"{r.get('reuse_cache_gb', 0):.2f} | {r.get('easycache_skipped', '-')} |"
        )
    return out


def block_table(model: str, res: str, sec: dict) -> list[str]:
    b = sec["blocks"]
    ceil = CEILING.get((model, res), {})
    out = [
        f"dense block {b['dense_ms']:.1f} ms (batch {b['batch']}, {b['tokens']} tokens)",
        "",
        "| keep | k/frame | bare block ms | TAPE pruned block ms | gather+scatter ms (share of dense) | "
        "speed-up TAPE | ceiling (cost model) | TAPE / ceiling | speed-up bare | naive (cost-model method) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r, v in b["keeps"].items():
        c = ceil.get(float(r))
        c_txt = "-" if c is None else f"{c:.2f}x"
        of_c = "-" if c is None else f"{100 * v['speedup_tape'] / c:.0f}%"
        out.append(
            f"| {r} | {v['k_per_frame']} | {v['bare_ms']:.1f} | {v['tape_ms']:.1f} | "
            f"{v['gather_scatter_ms']:.2f} ({100 * v['gather_scatter_share']:.1f}%) | "
            f"{v['speedup_tape']:.2f}x | {c_txt} | {of_c} | {v['speedup_bare']:.2f}x | "
            f"{v['speedup_naive']:.2f}x |"
        )
    return out


def overhead_lines(sec: dict) -> list[str]:
    o = sec["overheads"]
    return [
        f"- plan {o['plan']} ({o['n_score']} SCORE, {o['n_pruned']} PRUNE blocks, {o['n_spans']} spans), "
        f"keep {o['keep']}, dense block {o['dense_ms']:.1f} ms",
        f"- scoring (score_attention_received, 128 queries): {o['score_ms']:.2f} ms = "
        f"{100 * o['score_share']:.1f}% of a dense block",
        f"- smoothing + selection (TapeRun.select): {o['select_ms']:.2f} ms = {100 * o['select_share']:.1f}%",
        f"- SCORE block through the patch: {o['score_block_ms']:.1f} ms = "
        f"{100 * o['score_block_extra_share']:+.1f}% vs dense",
        f"- PRUNE block through the patch: {o['prune_block_ms']:.1f} ms",
        f"- reuse at a span end (apply_reuse): {o['reuse_span_end_ms']:.2f} ms = "
        f"{100 * o['reuse_span_end_share']:.1f}%",
        f"- fixed per-step overhead (scoring blocks + span ends) = "
        f"{100 * o['per_step_fixed_overhead_share_of_dense_step']:.2f}% of a dense step",
        f"- host synchronisations on the block path: {len(sec.get('syncs', []))}",
    ]


def compile_lines(c: dict) -> list[str]:
    out = [f"backend {c['backend']}, {c['steps']}-step KSampler runs"]
    for k in (
        "eager_unpruned",
        "compiled_unpruned",
        "compiled_blocks_unpruned",
        "eager_tape0.5",
        "compiled_tape0.5",
        "compiled_blocks_tape0.5",
    ):
        v = c.get(k, {})
        if "later_steps_median_ms" in v:
            extra = ""
            if "dynamo" in v:
                extra = f", first run {v['first_run_s']:.0f} s, graph breaks {v['dynamo']['graph_breaks']}"
            out.append(f"- {k}: {v['later_steps_median_ms']:.0f} ms/step{extra}")
        else:
            out.append(f"- {k}: {v.get('error') or v.get('skipped')}")
    for k in sorted(c):
        if k.startswith("gain_"):
            out.append(f"- {k}: {c[k]:.2f}x")
    return out


def summary_text(res: dict) -> str:
    m = res["meta"]
    lines = [f"== {m['model']} on {m.get('gpu', m['device'])}, torch {m['torch']}, ComfyUI {m.get('comfyui_version')}"]
    for r, sec in res["resolutions"].items():
        lines += ["", f"-- {r}"]
        if "blocks" in sec:
            lines += block_table(m["model"], r, sec)
        if "overheads" in sec:
            lines += overhead_lines(sec)
        if "composed_ms" in sec or sec.get("rows"):
            lines += e2e_table(sec)
        if "composition_check" in sec:
            lines.append(
                "composed / measured: " + ", ".join(f"{k} {v:.3f}" for k, v in sec["composition_check"].items())
            )
        if "compile" in sec:
            lines += compile_lines(sec["compile"])
    return "\n".join(lines)


# ---- Markdown for BENCHMARKS.md -------------------------------------------------------------------------
def _configs(results: list[dict]):
    for res in results:
        for r, sec in res["resolutions"].items():
            yield res["meta"]["model"], r, sec


def md_e2e(results: list[dict]) -> list[str]:
    cfgs = [(m, r, s) for m, r, s in _configs(results) if "composed_ms" in s]
    head = "| row (30 steps) | " + " | ".join(f"Wan {m} {r}" for m, r, _ in cfgs) + " |"
    out = [head, "|---" * (len(cfgs) + 1) + "|"]
    for name in ROW_ORDER:
        cells = []
        for _, _, s in cfgs:
            row, comp = s.get("rows", {}).get(name, {}), s["composed_ms"]
            if "wall_s" in row:
                base = s["rows"]["unpruned"]["wall_s"]
                cells.append(f"**{base / row['wall_s']:.2f}x** ({row['wall_s']:.1f} s, measured)")
            elif name in comp:
                cells.append(f"{comp['unpruned'] / comp[name]:.2f}x ({comp[name] / 1e3:.0f} s, composed)")
            else:
                cells.append("-")
        if any(c != "-" for c in cells):
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def md_steps(results: list[dict]) -> list[str]:
    out = [
        "| per-step ms (cond+uncond batch) | dense | keep 0.75 | 0.7 | 0.6 | 0.5 | 0.4 | 0.3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, r, s in _configs(results):
        if "composed_ms" not in s:
            continue
        pts = {float(k): v for k, v in s["composed_ms"]["_t_keep_points"].items()}
        cells = [f"{s['composed_ms']['_t_dense_ms']:.0f}"] + [f"{pts[k]:.0f}" for k in (0.75, 0.7, 0.6, 0.5, 0.4, 0.3)]
        out.append(f"| Wan {m} {r} | " + " | ".join(cells) + " |")
    return out


def md_blocks(results: list[dict]) -> list[str]:
    out = [
        "| config | dense block ms | keep | TAPE pruned block ms | speed-up | ceiling | of ceiling | "
        "block on kept tokens only | gather+scatter (share of dense) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, r, s in _configs(results):
        if "blocks" not in s:
            continue
        b, ceil = s["blocks"], CEILING.get((m, r), {})
        for k, v in b["keeps"].items():
            c = ceil.get(float(k))
            out.append(
                f"| Wan {m} {r} | {b['dense_ms']:.1f} | {k} | {v['tape_ms']:.1f} | {v['speedup_tape']:.2f}x | "
                f"{c:.2f}x | {100 * v['speedup_tape'] / c:.0f}% | {v['speedup_bare']:.2f}x | "
                f"{v['gather_scatter_ms']:.2f} ms ({100 * v['gather_scatter_share']:.1f}%) |"
            )
    return out


def md_overheads(results: list[dict]) -> list[str]:
    out = [
        "| config | scoring | smoothing + selection | SCORE block vs dense (in situ) | gather+scatter per "
        "PRUNE block | reuse at a span end | per step, all fixed costs | host syncs per step (block path) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, r, s in _configs(results):
        if "overheads" not in s:
            continue
        o, g = s["overheads"], s["blocks"]["keeps"]["0.5"]
        syncs = sum(1 for x in s.get("syncs", []) if x["message"].startswith("called a synchronizing"))
        out.append(
            f"| Wan {m} {r} | {o['score_ms']:.2f} ms ({100 * o['score_share']:.1f}%) | "
            f"{o['select_ms']:.2f} ms ({100 * o['select_share']:.1f}%) | "
            f"{100 * o['score_block_extra_share']:+.1f}% | {g['gather_scatter_ms']:.2f} ms "
            f"({100 * g['gather_scatter_share']:.1f}%) | {o['reuse_span_end_ms']:.2f} ms "
            f"({100 * o['reuse_span_end_share']:.1f}%) | "
            f"{100 * o['per_step_fixed_overhead_share_of_dense_step']:.2f}% of a dense step | {syncs} |"
        )
    return out


def md_vram(results: list[dict]) -> list[str]:
    out = [
        "| config | run | peak GB (max_memory_allocated) | vs unpruned | reuse cache on GPU |",
        "|---|---|---|---|---|",
    ]
    for m, r, s in _configs(results):
        rows = s.get("rows", {})
        pairs = [
            (n, rows[n])
            for n in (
                "unpruned",
                "tape_default",
                "tape_default_cpucache",
                "tape_default_bf16cache",
                "tape_default_skip",
                "tape_default_nearest",
                "tape_old_default",
            )
            if "peak_gb" in rows.get(n, {})
        ]
        if not pairs:
            pairs = [("unpruned (probe)", s["probe_dense"]), ("TAPE reuse, gpu cache (probe)", s["probe_tape"])]
        base = pairs[0][1]["peak_gb"]
        for n, row in pairs:
            out.append(
                f"| Wan {m} {r} | {n} | {row['peak_gb']:.2f} | {100 * (row['peak_gb'] / base - 1):+.1f}% | "
                f"{row['reuse_cache_gb']:.2f} GB |"
            )
    return out


def md_projection(results: list[dict]) -> list[str]:
    cfgs = [(m, r, s) for m, r, s in _configs(results) if "easycache_projection" in s]
    out = [
        "| EasyCache skips (of 30) | "
        + " | ".join(f"Wan {m} {r}: EasyCache / TAPE+EasyCache" for m, r, _ in cfgs)
        + " |",
        "|---" * (len(cfgs) + 1) + "|",
    ]
    counts = list(cfgs[0][2]["easycache_projection"]["by_skips"]) if cfgs else []
    for n in counts:
        cells = [
            f"{s['easycache_projection']['by_skips'][n]['easycache']:.2f}x / "
            f"{s['easycache_projection']['by_skips'][n]['tape+easycache']:.2f}x"
            for _, _, s in cfgs
        ]
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return out


def markdown(results: list[dict]) -> str:
    parts = [
        ("End-to-end speed-up vs unpruned", md_e2e),
        ("Per-step time", md_steps),
        ("Pruned block vs the ceiling", md_blocks),
        ("Overhead split (keep 0.5, shares of a dense block)", md_overheads),
        ("Peak VRAM", md_vram),
        ("TAPE + EasyCache by EasyCache skip count (composed)", md_projection),
    ]
    out = []
    for title, fn in parts:
        out += [f"#### {title}", ""] + fn(results) + [""]
    return "\n".join(out)


if __name__ == "__main__":
    loaded = [json.loads(open(p).read()) for p in sys.argv[1:]]
    print(markdown(loaded))
