"""The adapter interface: what the runtime asks of a model family. Adding a family = one new module, no runtime change.

Vocabulary (per model call):
- grid (F, H, W): the PRUNABLE video tokens after patching, frame-major. Tokens the adapter protects (reference or
  conditioning frames, guide frames) are not in the grid.
- every block's `img` rows are laid out [prefix | video (F*H*W) | suffix]: `n_prefix` comes from the call's layout
  (the same in every block); the suffix is whatever follows (HunyuanVideo's text in single blocks, LTX guide
  frames) and is computed per block as len(img) - n_prefix - F*H*W. Prefix and suffix rows are always kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class CallLayout:
    """What the DIFFUSION_MODEL wrapper learns from a model call's arguments.

    grid: prunable token grid (F, H, W); n_prefix: protected rows before the video in every block's `img`;
    refusal: a reason to run this call dense (e.g. conditioning frames the adapter cannot protect), or None."""

    grid: tuple[int, int, int]
    n_prefix: int = 0
    refusal: str | None = None


@dataclass(frozen=True)
class KeptRows:
    """The rows a pruned block keeps of one block's sequence, for one span's selection.

    kept [Bv, P+K+S]: row indices per video (prefix, kept video tokens in frame order, suffix);
    flat [B*(P+K+S)]: the same as flat rows of the block's `img` viewed [B*L, C] (cond/uncond rows share their video's);
    frame_major: no prefix or suffix, exactly K tokens per frame in frame order; key: identifies this (span, layout)
    for per-call caches of gathered block arguments."""

    kept: torch.Tensor
    flat: torch.Tensor
    frame_major: bool
    key: tuple


@runtime_checkable
class VideoDiTAdapter(Protocol):
    """One model family. Instances hold plain values only (they live in model_options, which is deep-copied)."""

    name: str
    blocks: tuple[tuple[str, int], ...]  # patches_replace["dit"] keys in execution order; the plan indexes this
    blocks_mutate_input: bool  # blocks write into their `img` in place: gathered inputs that are kept get copies

    @staticmethod
    def serves(diffusion_model) -> bool: ...

    @staticmethod
    def refusal(diffusion_model) -> str | None:
        """A message when this family's class is recognised but this variant is not supported."""

    @classmethod
    def from_model(cls, diffusion_model) -> VideoDiTAdapter: ...

    def layout(self, args: tuple, kwargs: dict) -> CallLayout:
        """Read from the DIFFUSION_MODEL wrapper's arguments (the padded latent [B, C, T, H, W] and the rest)."""

    def attention_len(self, kind: str, args: dict) -> int:
        """Query (and key) length of the block's self-attention call, the one to score. Its first n_prefix + F*H*W
        positions are the block's prefix and video rows."""

    def context_len(self, kind: str, args: dict) -> int:
        """Tokens the block attends to besides its own rows (text), for the cost model."""

    def block_flops(self, kind: str, tokens: int, ctx_tokens: int) -> float:
        """Multiply-adds x2 of one block of this kind on `tokens` rows of `img`."""

    def prune_args(self, kind: str, args: dict, call, rows: KeptRows) -> dict:
        """The block's args for the kept rows only: `img` gathered, and every per-token argument (rope, modulation,
        masks) gathered consistently. What is the same for every block of a span goes in call.span_cache(rows)."""
