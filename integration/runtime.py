"""What TAPE does while a model runs: per-run state, per-call plans, and the block patch.

No ComfyUI imports here: this module only sees the dicts and tensors the ComfyUI seams hand over.
integration/patcher.py installs these callables; integration/adapters/ hold the per-model details.

Per sampling run (created in OUTER_SAMPLE):   TapeRun   - selections per span, reuse caches, statistics.
Per model call (created in DIFFUSION_MODEL):  CallPlan  - step, keep ratio, token grid, per-call index caches.
Per block (patches_replace["dit"]):           TapeBlockPatch - score / gather -> original block -> scatter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ..tape_core import (
    BlockRole,
    ResidualCache,
    add_rows,
    keep_count,
    nearest_kept,
    rotation_priority,
    row_index,
    scatter_rows,
    score_attention_received,
    score_key_norm,
    score_random,
    select_per_frame,
    selection_jitter,
    smooth_over_frames,
)
from .adapters.base import CallLayout, KeptRows

log = logging.getLogger("TAPE")

RUN_KEY = "tape_run"  # transformer_options key of the per-run TapeRun (set in OUTER_SAMPLE)
CALL_KEY = "tape_call"  # transformer_options key of the per-call CallPlan (set in DIFFUSION_MODEL)
RESUMED_BELOW = 0.95  # a run whose first sigma is below this share of sigma_max resumes a partly denoised latent


@dataclass
class Selection:
    """The kept set of one span, in video-token coordinates (0 .. F*H*W - 1), shared by cond and uncond rows.

    kept [Bv, K]: kept video tokens per video; frame_major: exactly k sorted tokens per frame, frames in order;
    nearest [Bv, F*H*W]: each video token's nearest kept token, as a position in `kept` (or None)."""

    step_key: float
    kept: torch.Tensor
    frame_major: bool
    nearest: torch.Tensor | None = None
    layout: tuple = ()  # (grid, n_prefix) of the call that made it

    def fits(self, call: CallPlan) -> bool:
        """Usable by this call: same step, videos and token layout. cond and uncond share it; where their layouts
        differ (HunyuanVideo I2V v2 conditions only the positive: its protected first frame is prunable in the
        negative) each call selects its own."""
        return (
            self.step_key == call.sigma
            and self.kept.shape[0] == call.videos
            and self.layout == (call.grid, call.n_prefix)
        )

    def rows(self, call: CallPlan, span: int, seq_len: int) -> KeptRows | None:
        """The kept rows of a block whose `img` has seq_len rows laid out [prefix | video | suffix] (None when the
        block is shorter than prefix + video: the layout is not what the adapter described)."""
        key = ("rows", span, seq_len)
        rows = call.per_call.get(key)
        if rows is None:
            p, v = call.n_prefix, call.video_tokens
            s = seq_len - p - v
            if s < 0:
                return None
            kept = _with_ends(self.kept + p, p, seq_len - s, seq_len)
            flat = row_index(kept, call.batch, seq_len)
            rows = call.per_call[key] = KeptRows(kept, flat, self.frame_major and p == 0 and s == 0, (span, seq_len))
        return rows

    def nearest_rows(self, call: CallPlan, span: int, seq_len: int) -> torch.Tensor | None:
        """[B*L] flat positions into the gathered rows: each row's nearest kept row (prefix and suffix: themselves)."""
        if self.nearest is None:
            return None
        key = ("nn", span, seq_len)
        nn = call.per_call.get(key)
        if nn is None:
            p, k = call.n_prefix, self.kept.shape[1]
            s = seq_len - p - call.video_tokens
            nearest = _with_ends(self.nearest + p, p, p + k, p + k + s)
            nn = call.per_call[key] = row_index(nearest, call.batch, p + k + s)
        return nn


def _with_ends(middle: torch.Tensor, n_prefix: int, suffix_start: int, suffix_end: int) -> torch.Tensor:
    """[Bv, M] -> [Bv, n_prefix + M + (suffix_end - suffix_start)]: 0..n_prefix-1, middle, suffix_start..end-1."""
    parts = [middle]
    if n_prefix:
        parts.insert(0, torch.arange(n_prefix, device=middle.device).expand(middle.shape[0], -1))
    if suffix_end > suffix_start:
        parts.append(torch.arange(suffix_start, suffix_end, device=middle.device).expand(middle.shape[0], -1))
    return torch.cat(parts, dim=1) if len(parts) > 1 else middle


@dataclass
class CallPlan:
    """What one model call does. mode: off (outside start/end: untouched, not counted), dense (a keep-1 step),
    record (a keep-1 step in reuse mode: dense, fills the reuse cache), prune."""

    run: TapeRun
    mode: str
    sigma: float
    step: int = 0
    steps: int = 0
    keep: float = 1.0
    grid: tuple[int, int, int] = (0, 0, 0)  # prunable token grid (F, H, W) after patching
    n_prefix: int = 0  # protected rows before the video in every block's img (adapters/base.py)
    chunks: tuple = (0,)  # cond_or_uncond of this call
    batch: int = 1
    per_call: dict = field(default_factory=dict)  # per-call index / rope caches, span inputs
    blocks_run: int = 0  # TAPE block patches that ran in this call (0: something bypassed the blocks' seam)
    _span_args: tuple = (None, None)  # (rows key, dict): the adapter's gathered arguments of the current span

    def span_cache(self, rows: KeptRows) -> dict:
        """Where an adapter keeps the block arguments it gathered for these kept rows (rope tables, masks, modulation:
        the same for every block of a span). Holds one span's at a time: blocks run in order, so the first block of a
        new span drops the previous span's copies (LTX-Video 2B at 1216x704x121: 110 MB of rope tables a span)."""
        if self._span_args[0] != rows.key:
            self._span_args = (None, None)  # free the previous span's before the new ones are made
            self._span_args = (rows.key, {})
        return self._span_args[1]

    @property
    def videos(self) -> int:
        return self.batch // len(self.chunks)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[1] * self.grid[2]

    @property
    def video_tokens(self) -> int:
        return self.grid[0] * self.tokens_per_frame

    @property
    def k(self) -> int:
        return keep_count(self.keep, self.tokens_per_frame)


class RunStats:
    """Host-side counters for the end-of-run summary (GPU values are summed lazily, synced once at the end)."""

    def __init__(self):
        self.steps_seen: set[float] = set()
        self.steps_pruned: set[float] = set()
        self.kept_fracs: list[float] = []
        self.flops_dense = 0.0
        self.flops_run = 0.0
        self.jitter_sum: torch.Tensor | None = None
        self.jitter_n = 0
        self.cache_bytes = 0  # peak bytes held by the reuse cache
        self.cache_slots = 0

    def add_jitter(self, j: torch.Tensor):
        j = j.mean().detach()
        self.jitter_sum = j if self.jitter_sum is None else self.jitter_sum + j
        self.jitter_n += 1

    @property
    def mean_jitter(self) -> float | None:
        return None if not self.jitter_n else float(self.jitter_sum) / self.jitter_n

    def finish(self):
        """At the end of the run: device values become host numbers (one sync), so nothing that keeps the stats
        (a log handler holding records) holds device memory."""
        if torch.is_tensor(self.jitter_sum):
            self.jitter_sum = float(self.jitter_sum)

    @property
    def flops_saved(self) -> float:
        return 0.0 if self.flops_dense <= 0 else 1.0 - self.flops_run / self.flops_dense


@dataclass
class RunRecord:
    """A finished run as the UI shows it (host values only): the summary, and each pruned step's kept sets.

    kept[(step, span)] [Bv, K] int32 video-token indices; grid (F, H, W) and n_prefix of the last pruned call;
    roles / spans: the block plan (which span a block used)."""

    summary: str
    kept: dict[tuple[int, int], torch.Tensor]
    grid: tuple[int, int, int]
    n_prefix: int
    roles: tuple[str, ...]
    spans: tuple[int, ...]
    steps: int
    stats: dict


class RunHistory:
    """The last finished run of one TAPE patch, for the UI (the summary on the node, TAPE Mask Preview).
    Every deep copy of the model options shares it. Holds host memory only: 4 bytes per kept token, per span and
    pruned step (Wan 1.3B 480p, 30 steps: about 3.6 MB)."""

    def __init__(self):
        self.last: RunRecord | None = None

    def __deepcopy__(self, memo):
        return self


class TapeRun:
    """Per-sampling-run state. Fresh for every sampler call; dropped (with its tensors) when sampling ends."""

    def __init__(self, spec, sigma_start: float, sigma_end: float, sigma_max: float | None = None):
        self.spec = spec  # integration.patcher.TapeSpec: config, block plan, adapter
        self.sigma_start = sigma_start
        self.sigma_end = sigma_end
        self.sigma_max = sigma_max  # the model's highest noise level: a run that starts below it resumes a latent
        self.resumed = False
        self.resumed_warmup: float | None = None  # keep ratio of a resumed run's pruned warm-up step (summary)
        self.selections: dict[int, Selection] = {}
        self.ages: dict[int, torch.Tensor] = {}  # span -> [Bv, F*N] steps since each token was last computed
        self.reuse_cache: dict[tuple, ResidualCache] = {}
        self.stats = RunStats()
        self.kept_log: dict[tuple[int, int], torch.Tensor] = {}  # (step, span) -> kept [Bv, K] int32, for the UI
        self.last_layout: tuple[tuple[int, int, int], int, int] = ((0, 0, 0), 0, 0)  # grid, n_prefix, steps
        self._sample_sigmas: tuple[int, list[float]] = (0, [])
        self._warned: set[str] = set()

    def __deepcopy__(self, memo):
        # model_options may be deep-copied mid-run (e.g. by other nodes' extra passes): share, never copy tensors
        return self

    def release(self):
        """Drop every tensor this run holds (called when sampling ends, whatever way it ends)."""
        self.selections.clear()
        self.ages.clear()
        self.reuse_cache.clear()
        self.kept_log.clear()

    def record(self) -> RunRecord:
        """This run for the UI, moved to the host (one copy at the end of the run, never during it)."""
        plan = self.spec.plan
        s = self.stats
        grid, n_prefix, steps = self.last_layout
        return RunRecord(
            summary=self.summary(),
            kept={k: v.cpu() for k, v in self.kept_log.items()},
            grid=grid,
            n_prefix=n_prefix,
            roles=tuple(r.value for r in plan.roles),
            spans=tuple(plan.spans),
            steps=steps,
            stats={
                "steps_seen": len(s.steps_seen),
                "steps_pruned": len(s.steps_pruned),
                "blocks_pruned": len(plan.pruned_blocks()),
                "blocks": plan.n_blocks,
                "mean_keep": sum(s.kept_fracs) / len(s.kept_fracs) if s.kept_fracs else 1.0,
                "block_compute_saved": s.flops_saved,
                "cache_mib": s.cache_bytes / 2**20,
            },
        )

    def warn_once(self, key: str, msg: str):
        if key not in self._warned:
            self._warned.add(key)
            log.warning("TAPE: %s", msg)

    # ---- per call --------------------------------------------------------------------------------------
    def step_of(self, sigma: float, sample_sigmas) -> tuple[int, int]:
        """(step index, step count) of sigma in this sampler call's schedule (Heun's 2nd eval maps forward)."""
        if sample_sigmas is None:
            return 0, 0
        if self._sample_sigmas[0] != id(sample_sigmas):
            self._sample_sigmas = (id(sample_sigmas), [float(s) for s in sample_sigmas])
            first = self._sample_sigmas[1][0] if self._sample_sigmas[1] else None
            # starts well below the model's highest noise: a second KSamplerAdvanced stage, or denoise < 1. Some
            # schedulers start a fresh run a little below it (ddim_uniform: 0.98 of sigma_max at 20 steps), and a
            # few-step ddim_uniform run further (0.86 at 3 steps): that one is taken for resumed (a light warm-up)
            self.resumed = None not in (first, self.sigma_max) and first < RESUMED_BELOW * self.sigma_max
        ss = self._sample_sigmas[1]
        steps = len(ss) - 1
        tol = 1e-5 * max(1.0, abs(sigma))
        step = 0
        for i in range(steps):
            if ss[i] + tol >= sigma:
                step = i
            else:
                break
        return step, steps

    @torch.compiler.disable  # host bookkeeping (reads sigma once per call): never traced by torch.compile
    def plan_call(self, x: torch.Tensor, t_opts: dict, layout: CallLayout) -> CallPlan:
        cfg = self.spec.config
        sigmas = t_opts.get("sigmas")
        if sigmas is None:
            self.warn_once("nosigma", "no sigmas in transformer_options; running dense")
            return CallPlan(self, "off", 0.0)
        sigma = float(sigmas.reshape(-1)[0])  # one host sync per model call, never per block
        chunks = tuple(t_opts.get("cond_or_uncond") or (0,))
        if x.shape[0] % len(chunks):
            chunks = (0,)
        if not (self.sigma_end < sigma <= self.sigma_start):
            return CallPlan(self, "off", sigma)
        step, steps = self.step_of(sigma, t_opts.get("sample_sigmas"))
        if steps == 0:
            self.warn_once("nosteps", "no sample_sigmas in transformer_options; running dense")
            return CallPlan(self, "off", sigma)
        keep = cfg.schedule.keep_ratio(step, steps, cfg.keep_ratio, self.resumed)
        if cfg.schedule.preset != "custom" and cfg.keep_ratio >= 1.0:
            keep = 1.0
        if self.resumed and step < cfg.schedule.warmup_steps and keep < 1.0:
            self.resumed_warmup = keep  # for the summary: what the warm-up of this resumed run actually kept
        mode = "prune" if keep < 1.0 else ("record" if cfg.pruned_mode == "reuse" else "dense")
        if layout.refusal and mode != "dense":
            self.warn_once("layout", f"{layout.refusal}; those calls run dense")
            mode = "dense"
        self.stats.steps_seen.add(sigma)
        return CallPlan(self, mode, sigma, step, steps, keep, layout.grid, layout.n_prefix, chunks, x.shape[0])

    @torch.compiler.disable
    def account(self, call: CallPlan):
        """Add one finished call's FLOP estimate to the statistics (host arithmetic only)."""
        if call.mode == "off":
            return
        adapter, plan = self.spec.adapter, self.spec.plan
        pruned = call.mode == "prune"
        cut = call.video_tokens - call.grid[0] * call.k  # rows a pruned block does not run
        for i, (kind, _) in enumerate(adapter.blocks):
            # (rows, context) of this kind as its patched blocks saw them; prefix + video where none ran
            seq_len, ctx_len = call.per_call.get(("len", kind), (call.n_prefix + call.video_tokens, 0))
            dense = adapter.block_flops(kind, seq_len, ctx_len)
            self.stats.flops_dense += dense
            if pruned and plan.roles[i] is BlockRole.PRUNE:
                self.stats.flops_run += adapter.block_flops(kind, seq_len - cut, ctx_len)
            else:
                self.stats.flops_run += dense
        if not pruned:
            return
        self.stats.steps_pruned.add(call.sigma)
        self.stats.kept_fracs.append(call.k / call.tokens_per_frame)

    def pruned_nothing_hint(self) -> str | None:
        """Why a run that ran steps pruned none of them, when settings explain it (else None)."""
        s = self.stats
        if not s.steps_seen or s.steps_pruned or "bypassed" in self._warned:  # that warning already says why
            return None
        sched = self.spec.config.schedule
        return (
            f"TAPE pruned nothing in this run: all {len(s.steps_seen)} of its steps were dense (TAPE Budget Schedule: "
            f"warmup_steps {sched.warmup_steps} at keep {sched.resume_keep if self.resumed else sched.warmup_keep:g} "
            f"+ dense_last_steps "
            f"{sched.dense_last_steps}, or a start/end percent window that holds only those). Lower them to prune."
        )

    def summary(self) -> str:
        s = self.stats
        n_seen = len(s.steps_seen)
        if not n_seen:
            return "TAPE: no step ran inside start/end percent; nothing was pruned."
        plan = self.spec.plan
        mean_keep = sum(s.kept_fracs) / len(s.kept_fracs) if s.kept_fracs else 1.0
        saved = s.flops_saved
        jitter = s.mean_jitter
        cfg = self.spec.config
        where = "in host memory" if cfg.cache_device == "cpu" else "on the model device"
        warmup = ""
        if self.resumed_warmup is not None:
            warmup = f" (resumed a partly denoised latent: warm-up at keep {self.resumed_warmup:g})"
        return (
            f"TAPE: pruned {len(s.steps_pruned)}/{n_seen} steps{warmup}, "
            f"{len(plan.pruned_blocks())}/{plan.n_blocks} blocks "
            f"pruned ({plan.describe()}), mean kept fraction {mean_keep:.2f} of video tokens, "
            f"~{100 * saved:.0f}% of block compute saved (est. {1 / max(1e-6, 1 - saved):.2f}x on the blocks)"
            + (f", selection jitter {jitter:.2f}" if jitter is not None else "")
            + (
                f", reuse cache {s.cache_bytes / 2**20:.0f} MiB ({s.cache_slots} slots, {cfg.cache_format}, {where})"
                if s.cache_slots
                else ""
            )
            + "."
        )

    # ---- selection ------------------------------------------------------------------------------------
    def draw(self, call: CallPlan, span: int, device) -> Selection:
        """A random kept set (score 'random'): the same for every call of a step, so cond and uncond share it."""
        seed = hash((self.spec.config.seed, call.step, span)) & 0xFFFFFFFF
        return self.select(score_random(call.batch, call.video_tokens, seed, device=device), call, span)

    def select(self, scores: torch.Tensor, call: CallPlan, span: int = 0) -> Selection:
        """scores [B, F*H*W] of the call's video tokens -> Selection shared by the rows of each video."""
        cfg = self.spec.config
        f, n = call.grid[0], call.tokens_per_frame
        video = scores.float().reshape(len(call.chunks), call.videos, f, n).mean(dim=0)
        age = self.ages.get(span)
        if age is not None and age.shape != (call.videos, f * n):
            age = None  # the grid changed (another latent size): start counting afresh
        if cfg.score == "random":
            prio = video  # a fresh draw every step rotates by itself and ranks nothing: no smoothing, no rotation
        else:
            # per-frame mean normalisation makes the smoothing mix comparable values across frames
            video = smooth_over_frames(video / video.mean(dim=-1, keepdim=True).clamp(min=1e-12), cfg.smoothing)
            prio = rotation_priority(video, None if age is None else age.view_as(video), cfg.rotation)
        kept = select_per_frame(prio, call.k)
        self.kept_log[(call.step, span)] = kept.to(torch.int32)  # [Bv, K]; to the host once, at the end of the run
        self.last_layout = (call.grid, call.n_prefix, call.steps)
        if cfg.score != "random":  # only rotation reads the ages
            age = age + 1 if age is not None else video.new_ones(call.videos, f * n)
            self.ages[span] = age.scatter_(1, kept, 0.0)
        self.stats.add_jitter(selection_jitter(kept, f, n))
        nearest = None
        if cfg.pruned_mode == "nearest" or (cfg.pruned_mode == "reuse" and cfg.blend > 0):
            nearest = nearest_kept(kept, f, call.grid[1], call.grid[2])
        return Selection(call.sigma, kept, frame_major=True, nearest=nearest, layout=(call.grid, call.n_prefix))

    # ---- reuse cache ----------------------------------------------------------------------------------
    def _cache_key(self, slot: tuple, call: CallPlan) -> tuple:
        return (slot, call.chunks, call.batch)

    def store_cache(self, slot: tuple, call: CallPlan, y: torch.Tensor, x_in: torch.Tensor | None = None):
        """A dense step's residual y - x_in of every token for one slot (a span or a block): y, x_in [B, L, C]
        (x_in None: y is the residual)."""
        cfg = self.spec.config
        key = self._cache_key(slot, call)
        self.reuse_cache.pop(key, None)  # a replaced slot (a new latent size) is freed before its successor is made
        if x_in is None:
            self.reuse_cache[key] = ResidualCache(y, cfg.cache_format, self._cache_device(y))
        else:
            self.reuse_cache[key] = ResidualCache.from_difference(y, x_in, cfg.cache_format, self._cache_device(y))
        self._count_cache()

    def _cache_device(self, t: torch.Tensor):
        return "cpu" if self.spec.config.cache_device == "cpu" else t.device

    def apply_reuse(
        self, slot: tuple, call: CallPlan, x: torch.Tensor, flat: torch.Tensor, resid_k: torch.Tensor, nn=None
    ):
        """Give x's rows the residual their slot computed the last time each was kept (kept rows are overwritten
        by the caller), then store this step's residuals of the kept rows. x [B, L, C] in place; resid_k [B, K, C]."""
        key = self._cache_key(slot, call)
        cache = self.reuse_cache.get(key)
        b = self.spec.config.blend
        if cache is None or cache.shape != tuple(x.shape):
            # first pruned step without a dense warm-up (or a new latent size): nothing cached yet, so every pruned
            # token takes its nearest kept token's update (or, with blend 0, none). The cache starts at zero: a token
            # not kept before the next step then gets a damped neighbour update (blend x the fresh one), which
            # measured 0.4 dB better than starting the cache from the neighbours' updates (BENCHMARKS.md)
            self.reuse_cache.pop(key, None)
            cache = ResidualCache.zeros(x.shape, self.spec.config.cache_format, self._cache_device(x))
            self.reuse_cache[key] = cache
            self._count_cache()
            b = 1.0
        else:
            cache.add_into(x, alpha=1.0 - b)
        if b > 0 and nn is not None:  # mix in the nearest kept token's fresh residual
            add_rows(x, resid_k, nn, alpha=b)
        cache.write_rows(flat, resid_k)

    def _count_cache(self):
        self.stats.cache_slots = len(self.reuse_cache)
        self.stats.cache_bytes = max(self.stats.cache_bytes, sum(c.nbytes for c in self.reuse_cache.values()))


def to_host(t: torch.Tensor) -> torch.Tensor:
    """A copy of t in host memory (pinned when CUDA is there, so the copy back can overlap)."""
    host = torch.empty(t.shape, dtype=t.dtype, device="cpu", pin_memory=t.is_cuda)
    return host.copy_(t, non_blocking=t.is_cuda)


class TapeBlockPatch:
    """patches_replace["dit"] callable for one block. Chains a pre-existing replace (`prev`) on the same block:
    prev runs inside TAPE, on the tokens TAPE hands to the block."""

    is_tape = True

    def __init__(self, index: int, kind: str, prev=None):
        self.index = index  # position in the adapter's `blocks` (the plan's numbering)
        self.kind = kind  # ComfyUI's block kind ("double_block", "single_block")
        self.prev = prev

    def run_block(self, args: dict, extra: dict) -> dict:
        if self.prev is not None:
            return self.prev(args, extra)
        return extra["original_block"](args)

    def __call__(self, args: dict, extra: dict) -> dict:
        t_opts = args.get("transformer_options") or {}
        call: CallPlan | None = t_opts.get(CALL_KEY)
        if call is None or call.mode == "off":
            return self.run_block(args, extra)
        call.blocks_run += 1
        run = call.run
        if ("len", self.kind) not in call.per_call:  # the cost model's view of this block kind (host values)
            adapter = run.spec.adapter
            call.per_call[("len", self.kind)] = (args["img"].shape[1], adapter.context_len(self.kind, args))
        if call.mode == "dense":
            return self.run_block(args, extra)
        plan = run.spec.plan
        role, span = plan.roles[self.index], plan.spans[self.index]
        if role is BlockRole.SCORE:
            return self._score(args, extra, call, span) if call.mode == "prune" else self.run_block(args, extra)
        if role is not BlockRole.PRUNE:
            return self.run_block(args, extra)
        if call.mode == "record":
            return self._record(args, extra, call, span)
        return self._prune(args, extra, call, span)

    # ---- roles ----------------------------------------------------------------------------------------
    def _score(self, args, extra, call: CallPlan, span: int) -> dict:
        run = call.run
        img = args["img"]
        p, v = call.n_prefix, call.video_tokens
        if img.shape[1] < p + v:
            run.warn_once(
                "grid",
                f"block input has {img.shape[1]} tokens, fewer than the {p} + {v} of the latent grid {call.grid}; "
                "running dense",
            )
            return self.run_block(args, extra)
        sel = run.selections.get(span)
        if sel is not None and sel.fits(call):
            return self.run_block(args, extra)  # cond/uncond in a second call: reuse this step's kept set
        cfg = run.spec.config
        if cfg.score == "random":
            out = self.run_block(args, extra)
            run.selections[span] = run.draw(call, span, img.device)
            return out
        out, scores = self._run_scored(args, extra, cfg, run.spec.adapter.attention_len(self.kind, args))
        if scores is None:
            run.warn_once("noattn", "no self-attention call seen in a scoring block; running dense")
            return out
        run.selections[span] = run.select(scores[:, p : p + v], call, span)
        return out

    def _run_scored(self, args, extra, cfg, attn_len: int):
        """Run the block dense with an attention override that scores its first self-attention call (query and key
        length attn_len; a cross-attention's keys are the text). The override exists only during this call and chains
        any override already set (e.g. Sage nodes). Returns (block output, scores [B, attn_len] or None)."""
        t_opts = args["transformer_options"]
        slot = {}
        prev_override = t_opts.get("optimized_attention_override")

        def scoring_override(func, *a, **kw):
            if "scores" not in slot:
                q, k = a[0], a[1]
                skip = kw.get("skip_reshape", False)
                dim = 2 if skip else 1
                if q.shape[dim] == attn_len and k.shape[dim] == attn_len:
                    heads = kw["heads"] if "heads" in kw else a[3]  # by name (Wan) or by position (Flux-style)
                    with torch.no_grad():
                        if cfg.score == "key_norm":
                            slot["scores"] = score_key_norm(k, heads, skip)
                        else:
                            slot["scores"] = score_attention_received(q, k, heads, cfg.score_samples, skip)
            if prev_override is not None:
                return prev_override(func, *a, **kw)
            return func(*a, **kw)

        t_opts["optimized_attention_override"] = scoring_override
        try:
            out = self.run_block(args, extra)
        finally:
            if prev_override is None:
                t_opts.pop("optimized_attention_override", None)
            else:
                t_opts["optimized_attention_override"] = prev_override
        return out, slot.get("scores")

    def _slot(self, spec, span: int) -> tuple[tuple, bool, bool]:
        """(cache slot, does the slot start at this block, does it end here) in reuse mode. A span slot caches the
        residual of the whole span (equal to the sum of per-block caches while the kept set is the span's); where a
        span crosses from one block kind to another (their rows differ), each kind's part is a slot of its own."""
        if spec.config.cache_slots == "block":
            return ("block", self.index), True, True
        plan, blocks, i = spec.plan, spec.adapter.blocks, self.index
        starts = plan.is_span_start(i) or blocks[i - 1][0] != self.kind
        ends = plan.is_span_end(i) or (i + 1 < len(blocks) and blocks[i + 1][0] != self.kind)
        return ("span", span, self.kind), starts, ends

    def _record(self, args, extra, call: CallPlan, span: int) -> dict:
        """Dense step in reuse mode: remember each slot's full residual so later pruned steps can reuse it."""
        run = call.run
        slot, starts, ends = self._slot(run.spec, span)
        if starts and slot[0] == "span":
            # Holding a span's full-length input on the GPU through the span adds a whole activation to the peak of
            # every block in it (1.55 GB at Wan 14B 720p; the likely source of the 0.67 GB measured there above the
            # cache itself): park it in host memory instead (once per run: only the warm-up step records).
            call.per_call[("slot_in", slot)] = to_host(args["img"])
        elif starts:
            x_in = args["img"]
            call.per_call[("slot_in", slot)] = x_in.clone() if run.spec.adapter.blocks_mutate_input else x_in
        out = self.run_block(args, extra)
        if ends:
            x_in = call.per_call.pop(("slot_in", slot), None)
            if x_in is not None:
                run.store_cache(slot, call, out["img"], x_in)
        return out

    def _prune(self, args, extra, call: CallPlan, span: int) -> dict:
        run = call.run
        sel = run.selections.get(span)
        x = args["img"]
        if (
            (sel is None or not sel.fits(call))
            and run.spec.config.score == "random"
            and x.shape[1] >= call.video_tokens
        ):
            sel = run.selections[span] = run.draw(call, span, x.device)  # a span that starts without a SCORE block
        if sel is None or not sel.fits(call):
            run.warn_once("nosel", f"block {self.index}: no selection for this step; running dense")
            return self.run_block(args, extra)
        rows = sel.rows(call, span, x.shape[1])
        if rows is None:
            run.warn_once("grid", f"block {self.index}: {x.shape[1]} rows, fewer than its layout; running dense")
            return self.run_block(args, extra)
        flat = rows.flat
        pruned_args = run.spec.adapter.prune_args(self.kind, args, call, rows)
        mode = run.spec.config.pruned_mode
        xk = pruned_args["img"]
        if run.spec.adapter.blocks_mutate_input and mode != "skip":
            xk = xk.clone()
        slot, starts, ends = self._slot(run.spec, span) if mode == "reuse" else (None, False, False)
        if starts:
            call.per_call[("slot_in", slot)] = xk
        out = self.run_block(pruned_args, extra)
        y = out["img"]
        x = x.contiguous()  # the in-place updates below work on row views of x
        slot_in = call.per_call.pop(("slot_in", slot), None) if ends else None
        if ends and slot_in is None:
            # the slot's first block did not run through TAPE in this call (another node replaced it, e.g. SkipLayer
            # Guidance's perturbed pass): no span residual to cache; pruned rows take their neighbours' update
            mode = "nearest"
        if slot_in is not None:
            run.apply_reuse(slot, call, x, flat, y - slot_in, sel.nearest_rows(call, span, x.shape[1]))
        elif mode == "nearest" and sel.nearest is not None:
            add_rows(x, y - xk, sel.nearest_rows(call, span, x.shape[1]))  # each token: its nearest kept one's update
        return {**out, "img": scatter_rows(x, flat, y)}
