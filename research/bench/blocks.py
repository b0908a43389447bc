"""One Wan block in isolation: dense vs TAPE's pruned path, and TAPE's overhead split.

All at the sampler's real batch (cond + uncond = 2) on a real block of the loaded model, with ComfyUI's own rope
(fp32 rows) and text context. Variants per keep ratio r (K = F * round(r * N) kept tokens):
- bare:  the block on K tokens, inputs already gathered: the ceiling with free data movement;
- tape:  the pack's gather_rows -> block -> scatter_rows (what every TAPE PRUNE block does per call);
- naive: the cost model's reference (index_select + clone + index_copy_, fp32 rope rows gathered per block),
         i.e. how the ceiling in shared/notes/cost-model.md was measured.
"""

from __future__ import annotations

import torch

from .env import time_fn

BLOCK_KEEPS = (0.75, 0.5, 0.4, 0.3, 0.2)


class BlockBench:
    def __init__(self, patched_model, grid_latent, clock, batch: int = 2, block_index: int = 5):
        from comfyui_tape.integration.runtime import TapeRun

        dm = patched_model.model.diffusion_model
        self.clock, self.dm = clock, dm
        self.spec = patched_model.model_options["transformer_options"]["tape_spec"]
        self.blk = dm.blocks[block_index]
        dev, dt = next(self.blk.parameters()).device, next(self.blk.parameters()).dtype
        f, h, w = grid_latent
        self.grid = (f, h // 2, w // 2)
        self.batch, self.n = batch, self.grid[1] * self.grid[2]
        self.seq = f * self.n
        g = torch.Generator(device=dev).manual_seed(3)
        self.x = torch.randn(batch, self.seq, dm.dim, generator=g, device=dev, dtype=dt)
        self.e0 = 0.1 * torch.randn(batch, 1, 6, dm.dim, generator=g, device=dev, dtype=dt)
        self.ctx = dm.text_embedding(torch.randn(batch, 512, 4096, generator=g, device=dev, dtype=dt))
        self.pe = dm.rope_encode(f, h, w, device=dev, dtype=dt)  # exactly what WanModel._forward builds
        self.run = TapeRun(self.spec, 1e9, -1.0)

    # ---- helpers ---------------------------------------------------------------------------------------
    def block(self, x, pe, t_opts=None):
        return self.blk(
            x, e=self.e0, freqs=pe, context=self.ctx, context_img_len=None, transformer_options=t_opts or {}
        )

    def block_wrap(self, args):
        return {"img": self.block(args["img"], args["pe"], args["transformer_options"])}

    def call_plan(self, keep):
        from comfyui_tape.integration.runtime import CallPlan

        return CallPlan(self.run, "prune", 0.5, 5, 30, keep, self.grid, chunks=(1, 0), batch=self.batch)

    def kept(self, keep):
        from comfyui_tape.tape_core import keep_count, select_per_frame

        scores = torch.rand(1, self.grid[0], self.n, device=self.x.device)
        return select_per_frame(scores, keep_count(keep, self.n))

    def t(self, fn):
        return time_fn(fn, self.clock)["median_ms"]

    # ---- measurements ----------------------------------------------------------------------------------
    def speedups(self, keeps=BLOCK_KEEPS) -> dict:
        dense = self.t(lambda: self.block(self.x, self.pe))
        out = {"dense_ms": dense, "batch": self.batch, "tokens": self.seq, "keeps": {}}
        for r in keeps:
            out["keeps"][str(r)] = self.one_keep(r, dense)
        return out

    def one_keep(self, r: float, dense: float) -> dict:
        from comfyui_tape.integration.adapters.gather import gather_token_axis
        from comfyui_tape.tape_core import gather_rows, row_index, scatter_rows

        x, pe = self.x, self.pe
        kept = self.kept(r)
        flat = row_index(kept, self.batch, self.seq)
        pe_k = gather_token_axis(pe, kept, self.batch)
        xk = gather_rows(x, flat)
        xw = x.clone()
        idx = kept[0]

        def naive():
            y = self.block(x.index_select(1, idx).clone(), pe.index_select(1, idx).clone())
            return x.clone().index_copy_(1, idx, y)

        def span_setup():  # once per span and model call: flat row index + rope rows
            return row_index(kept, self.batch, self.seq), gather_token_axis(pe, kept, self.batch)

        bare = self.t(lambda: self.block(xk, pe_k))
        tape = self.t(lambda: scatter_rows(xw, flat, self.block(gather_rows(xw, flat), pe_k)))
        gs = self.t(lambda: scatter_rows(xw, flat, gather_rows(xw, flat)))
        naive_ms = self.t(naive)
        setup = self.t(span_setup)
        moved = 2 * flat.numel() * x.shape[-1] * x.element_size()  # gather + scatter, each reads and writes K rows
        return {
            "k_per_frame": int(kept.shape[1] // self.grid[0]),
            "bare_ms": bare,
            "tape_ms": tape,
            "naive_ms": naive_ms,
            "gather_scatter_ms": gs,
            "span_setup_ms": setup,
            "speedup_bare": dense / bare,
            "speedup_tape": dense / tape,
            "speedup_naive": dense / naive_ms,
            "gather_scatter_share": gs / dense,
            "gather_scatter_gbps": 2 * moved / (gs * 1e-3) / 1e9,
        }

    def overheads(self, keep=0.5) -> dict:
        """Overhead split at `keep`, as shares of the dense block: in isolation and through TAPE's block patch."""
        from comfyui_tape.integration.runtime import CALL_KEY, TapeBlockPatch
        from comfyui_tape.tape_core import row_index, score_attention_received

        plan = self.spec.plan
        roles = [r.value for r in plan.roles]
        score_i = roles.index("score") if "score" in roles else None  # None: block 0 prunes too (random draw)
        mid = [i for i in plan.span_blocks(0) if not plan.is_span_start(i) and not plan.is_span_end(i)][0]
        dense = self.t(lambda: self.block(self.x, self.pe))
        heads = self.dm.num_heads
        q, k = torch.randn_like(self.x), torch.randn_like(self.x)
        score = self.t(lambda: score_attention_received(q, k, heads, self.spec.config.score_samples))
        call = self.call_plan(keep)
        scores = torch.rand(self.batch, self.seq, device=self.x.device)
        select = self.t(lambda: self.run.select(scores, call, 0))
        draw = self.t(lambda: self.run.draw(call, 0, self.x.device))  # a random selection, scores drawn included
        sel = self.run.select(scores, call, 0)
        flat = row_index(sel.kept, self.batch, self.seq)
        xw = self.x.clone()
        resid = torch.randn_like(self.x[:, : flat.numel() // self.batch])
        self.run.store_cache(("span", 0), call, torch.randn_like(self.x))
        reuse = self.t(lambda: self.run.apply_reuse(("span", 0), call, xw, flat, resid))

        def args(x):
            return {"img": x, "txt": self.ctx, "vec": self.e0, "pe": self.pe, "transformer_options": {CALL_KEY: call}}

        extra = {"original_block": self.block_wrap}
        score_block = dense
        if score_i is not None:
            score_patch = TapeBlockPatch(score_i, "double_block")

            def scored():
                self.run.selections.clear()
                return score_patch(args(self.x), extra)

            score_block = self.t(scored)
            scored()  # leaves this step's selection for the PRUNE block
        else:
            self.run.selections[0] = sel
        prune_patch = TapeBlockPatch(mid, "double_block")
        prune_block = self.t(lambda: prune_patch(args(xw), extra))
        n_score = roles.count("score")
        n_pruned = roles.count("prune")
        n_spans = len({s for s, r in zip(plan.spans, roles) if r == "prune"})
        # a SCORE block's extra time includes its selection; a span started by a PRUNE block (random draw) draws one
        n_drawn = n_spans - n_score if self.spec.config.score == "random" else 0
        per_step = n_score * (score_block - dense) + n_drawn * draw + n_spans * reuse
        return {
            "keep": keep,
            "dense_ms": dense,
            "plan": plan.describe(),
            "score_ms": score,
            "select_ms": select,
            "draw_ms": draw,
            "n_drawn": n_drawn,
            "reuse_span_end_ms": reuse,
            "score_block_ms": score_block,
            "prune_block_ms": prune_block,
            "score_share": score / dense,
            "select_share": select / dense,
            "score_block_extra_share": (score_block - dense) / dense,
            "reuse_span_end_share": reuse / dense,
            "per_step_fixed_overhead_share_of_dense_step": per_step / (plan.n_blocks * dense),
            "n_score": n_score,
            "n_pruned": n_pruned,
            "n_spans": n_spans,
        }

    def sync_check(self, keep=0.5) -> list[dict]:
        """Host synchronisations inside TAPE's per-block path (score block, first and later pruned blocks,
        span-end reuse), found with torch.cuda.set_sync_debug_mode('warn')."""
        from comfyui_tape.integration.runtime import CALL_KEY, TapeBlockPatch

        if not self.clock.cuda:
            return []
        plan = self.spec.plan
        roles = [r.value for r in plan.roles]
        call = self.call_plan(keep)
        self.run.selections.clear()
        extra = {"original_block": self.block_wrap}
        xw = self.x.clone()
        found = []
        with _SyncRecorder(found):
            for i in range(plan.n_blocks):
                if roles[i] == "dense":
                    continue
                args = {
                    "img": xw,
                    "txt": self.ctx,
                    "vec": self.e0,
                    "pe": self.pe,
                    "transformer_options": {CALL_KEY: call},
                }
                xw = TapeBlockPatch(i, "double_block")(args, extra)["img"]
            torch.cuda.synchronize()
        return found


class _SyncRecorder:
    """Records each synchronising CUDA call with the innermost pack / bench / comfy frame that caused it."""

    def __init__(self, found: list):
        self.found = found

    def __enter__(self):
        import traceback
        import warnings

        self._old = warnings.showwarning
        self._filters = warnings.filters[:]
        warnings.simplefilter("always")

        def show(message, category, filename, lineno, file=None, line=None):
            stack = traceback.extract_stack()[:-1]
            where = [
                f"{fr.filename.split('/')[-2]}/{fr.filename.split('/')[-1]}:{fr.lineno} {fr.name}"
                for fr in stack
                if "comfyui_tape" in fr.filename or "/main/" in fr.filename or "comfy" in fr.filename
            ]
            self.found.append({"message": str(message)[:160], "where": where[-3:]})

        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc):
        import warnings

        torch.cuda.set_sync_debug_mode("default")
        warnings.showwarning = self._old
        warnings.filters[:] = self._filters
        return False


def new_shape_cost(bb: BlockBench, per_backend: int = 3) -> dict:
    """First call of a block at a token count never seen before vs the second call, per SDPA backend.

    A schedule that changes the keep ratio every step hands the block a new K every step; whatever the stack does
    once per new shape (attention plan building, allocator growth, library heuristics) is paid every step of the
    first run. Each backend gets its own unseen K values so no plan is shared between measurements.
    """
    import contextlib
    import statistics
    import time

    from torch.nn.attention import SDPBackend, sdpa_kernel

    f = bb.grid[0]
    backends = {
        "default": None,
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }
    out, k = {}, int(0.45 * bb.n)
    for name, backend in backends.items():
        firsts, steadies = [], []
        try:
            for _ in range(per_backend):
                k += 1  # a per-frame count no earlier call used
                x = bb.x[:, : f * k].contiguous()
                pe = bb.pe[:, : f * k].contiguous()
                ctx = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()
                with ctx:
                    bb.clock.sync()
                    t0 = time.perf_counter()
                    bb.block(x, pe)
                    bb.clock.sync()
                    t1 = time.perf_counter()
                    bb.block(x, pe)
                    bb.clock.sync()
                    t2 = time.perf_counter()
                firsts.append((t1 - t0) * 1e3)
                steadies.append((t2 - t1) * 1e3)
            out[name] = {
                "first_ms": statistics.median(firsts),
                "steady_ms": statistics.median(steadies),
                "extra_first_ms": statistics.median(firsts) - statistics.median(steadies),
            }
        except Exception as e:  # a backend may not support these shapes: say so
            out[name] = {"error": f"{type(e).__name__}: {e}"[:500]}
    return out
