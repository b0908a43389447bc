"""Which blocks score and reselect, which are pruned, which stay dense (TAPE part 2: reselection).

A SCORE block runs dense; the attention inside it is scored and a new kept set is selected. The PRUNE blocks
that follow it (its span) run on that kept set until the next SCORE block, so every depth range prunes by
its own notion of importance. DENSE blocks run untouched.
"""

from dataclasses import dataclass, field
from enum import Enum


class BlockRole(str, Enum):
    DENSE = "dense"
    SCORE = "score"
    PRUNE = "prune"


def parse_block_list(text: str) -> tuple[int, ...]:
    """'0, 10 20' -> (0, 10, 20); raises ValueError naming the bad entry."""
    out = []
    for item in text.replace(",", " ").split():
        if not item.lstrip("-").isdigit():
            raise ValueError(f"reselect_blocks: '{item}' is not a block number")
        out.append(int(item))
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class ReselectPolicy:
    """every: a selection every `every` blocks, starting at the last dense-first block (block 0 when none is dense;
    0 = select once).
    blocks: explicit SCORE blocks (overrides `every` when given).
    dense_first / dense_last: blocks at either end that never prune. dense_first 1 (the default): block 0 runs dense
    and makes the first selection. A selection that needs no scores (the random draw) may prune from block 0 on
    (dense_first 0: faster, measured further from the unpruned video); a scored one (attention, key_norm) is made by
    a dense block, so there dense_first is at least 1 (scoring never costs an extra dense block).
    """

    every: int = 20
    blocks: tuple[int, ...] = field(default_factory=tuple)
    dense_first: int = 1
    dense_last: int = 0

    def __post_init__(self):
        if self.every < 0:
            raise ValueError(f"reselect_every must be >= 0, got {self.every}")
        if self.dense_first < 0:
            raise ValueError(f"dense_first_blocks must be >= 0, got {self.dense_first}")
        if self.dense_last < 0:
            raise ValueError(f"dense_last_blocks must be >= 0, got {self.dense_last}")
        if any(b < 0 for b in self.blocks):
            raise ValueError(f"reselect_blocks must be >= 0, got {self.blocks}")

    def plan(self, n_blocks: int, dense_scoring: bool = True) -> "BlockPlan":
        """dense_scoring False (a selection that needs no scores, e.g. a random draw): a reselection block past the
        dense first blocks is a PRUNE block that starts a new span (its kept set is drawn before it runs); only
        the first selection keeps a SCORE block, the last dense-first block (with dense_first 0 there is none: block 0
        prunes and draws the first kept set)."""
        bad = [b for b in self.blocks if b >= n_blocks]
        if bad:
            raise ValueError(f"reselect_blocks {bad} do not exist: this model has {n_blocks} blocks (0-{n_blocks - 1})")
        first = max(self.dense_first, 1) if dense_scoring else self.dense_first  # scores come from a dense block
        if first + self.dense_last >= n_blocks:
            raised = " (dense_first_blocks counts as 1: a scored selection is made by a dense block)"
            raise ValueError(
                f"dense_first_blocks + dense_last_blocks = {self.dense_first} + {self.dense_last} leaves no block "
                f"to prune in a model with {n_blocks} blocks" + (raised if first != self.dense_first else "")
            )
        last_prunable = n_blocks - self.dense_last  # blocks >= this stay dense
        if self.blocks:
            score = set(self.blocks)
        else:
            start = max(first - 1, 0)
            step = self.every if self.every > 0 else n_blocks
            score = set(range(start, last_prunable, step))
        score = {s for s in score if s < last_prunable}  # a selection nothing uses is not worth scoring
        roles, spans = [], []
        span = -1
        for i in range(n_blocks):
            if i in score:
                span = len({s for s in score if s <= i}) - 1
                pruned = not dense_scoring and first <= i < last_prunable
                roles.append(BlockRole.PRUNE if pruned else BlockRole.SCORE)
                spans.append(span)
            elif i < first or i >= last_prunable or span < 0:
                roles.append(BlockRole.DENSE)
                spans.append(-1)
            else:
                roles.append(BlockRole.PRUNE)
                spans.append(span)
        return BlockPlan(tuple(roles), tuple(spans))


@dataclass(frozen=True)
class BlockPlan:
    """roles[i] and spans[i] (the selection a SCORE block makes / a PRUNE block uses; -1 for DENSE)."""

    roles: tuple[BlockRole, ...]
    spans: tuple[int, ...]

    @property
    def n_blocks(self) -> int:
        return len(self.roles)

    def pruned_blocks(self) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r is BlockRole.PRUNE]

    def span_blocks(self, span: int) -> list[int]:
        return [i for i, (r, s) in enumerate(zip(self.roles, self.spans)) if r is BlockRole.PRUNE and s == span]

    def is_span_start(self, i: int) -> bool:
        return self.roles[i] is BlockRole.PRUNE and (
            i == 0 or self.roles[i - 1] is not BlockRole.PRUNE or self.spans[i - 1] != self.spans[i]
        )

    def is_span_end(self, i: int) -> bool:
        last = i == self.n_blocks - 1
        return self.roles[i] is BlockRole.PRUNE and (
            last or self.roles[i + 1] is not BlockRole.PRUNE or self.spans[i + 1] != self.spans[i]
        )

    def describe(self) -> str:
        return "".join({"dense": "D", "score": "S", "prune": "p"}[r.value] for r in self.roles)
