"""The testbed's prompt vocabulary and its fixed text embeddings (stands in for Wan's T5 text encoder).

A prompt is a few vocabulary words in any order, e.g. "cat moving left fast on brick, camera pan-right".
Each word maps to a fixed random vector in the model's 4096-d text space; a prompt becomes a sequence of
`TEXT_LEN` tokens (its word vectors, then zero rows). The empty prompt is all zeros, so cond and uncond have
the same shape and ComfyUI batches them together under CFG. Wan's cross-attention has no positional
encoding over text tokens, so word order never matters.
"""

import re
import zlib

import numpy as np
import torch

TEXT_DIM = 4096  # Wan 2.1's text_dim (umT5-XXL width); ComfyUI's Wan detection assumes it.
TEXT_LEN = 8  # tokens per prompt: at most one word per role (5 roles), zero-padded.
EMBED_SEED = 20251123  # base seed of the word vectors; changing it invalidates the trained checkpoint.

SCENES = ("brick", "grass", "gravel", "coffee", "space", "moon")
OBJECTS = ("cat", "astronaut", "rocket", "coin", "photographer")
MOTIONS = ("left", "right", "up", "down", "still")
SPEEDS = ("slow", "fast")
CAMERAS = ("static", "pan-left", "pan-right", "pan-up", "pan-down", "zoom-in", "zoom-out")
ROLES = {"scene": SCENES, "object": OBJECTS, "motion": MOTIONS, "speed": SPEEDS, "camera": CAMERAS}
WORDS = tuple(w for words in ROLES.values() for w in words)

# Connecting words a user may type; they carry no meaning and are dropped.
FILLER = frozenset("a an the on over in of with and is moving moves camera background".split())


class UnknownWordsError(ValueError):
    """A prompt used words outside the vocabulary; the message lists them and the whole vocabulary."""


def vocabulary_help() -> str:
    """Human-readable listing of the vocabulary, by role."""
    lines = [f"  {role}: {', '.join(words)}" for role, words in ROLES.items()]
    return "Testbed vocabulary:\n" + "\n".join(lines) + f"\n  (ignored filler words: {', '.join(sorted(FILLER))})"


def parse_prompt(text: str) -> list[str]:
    """Split a prompt into vocabulary words (lower-cased, filler dropped, order kept, duplicates removed).

    Raises UnknownWordsError naming every unknown word, or if two words share a role.
    """
    tokens = [t for t in re.split(r"[\s,.;:!?]+", text.lower()) if t and t not in FILLER]
    unknown = [t for t in tokens if t not in WORDS]
    if unknown:
        raise UnknownWordsError(f"Unknown testbed prompt word(s): {', '.join(unknown)}.\n{vocabulary_help()}")
    words = list(dict.fromkeys(tokens))
    for role, role_words in ROLES.items():
        used = [w for w in words if w in role_words]
        if len(used) > 1:
            raise UnknownWordsError(f"Testbed prompt has several {role} words ({', '.join(used)}); use one.")
    return words


def make_prompt(
    scene: str, obj: str | None = None, motion: str = "still", speed: str | None = None, camera: str = "static"
) -> str:
    """The canonical prompt text for one clip spec, e.g. 'cat moving left fast on brick, camera pan-right'."""
    parts = []
    if obj is not None:
        parts.append(obj)
        parts.append(f"moving {motion}" if motion != "still" else "still")
        if motion != "still" and speed is not None:
            parts.append(speed)
        parts.append("on")
    parts.append(scene)
    return " ".join(parts) + f", camera {camera}"


def word_vector(word: str) -> np.ndarray:
    """The fixed [TEXT_DIM] float32 vector of one word (unit variance per entry).

    Seeded by the word itself, so adding words never changes existing ones; numpy's legacy RandomState
    stream is frozen across numpy versions, which keeps the trained checkpoint's embeddings reproducible.
    """
    seed = (EMBED_SEED + zlib.crc32(word.encode())) % (2**32)
    return np.random.RandomState(seed).standard_normal(TEXT_DIM).astype(np.float32)


_TABLE: torch.Tensor | None = None


def embedding_table() -> torch.Tensor:
    """[len(WORDS) + 1, TEXT_DIM] float32: row i is WORDS[i]; the last row is zeros (padding / empty)."""
    global _TABLE
    if _TABLE is None:
        rows = [word_vector(w) for w in WORDS] + [np.zeros(TEXT_DIM, np.float32)]
        _TABLE = torch.from_numpy(np.stack(rows))
    return _TABLE


PAD_ID = len(WORDS)


def word_ids(words: list[str]) -> list[int]:
    """Token ids of `words`, padded with PAD_ID to TEXT_LEN."""
    ids = [WORDS.index(w) for w in words]
    return ids + [PAD_ID] * (TEXT_LEN - len(ids))


def embed_ids(ids: torch.Tensor) -> torch.Tensor:
    """[B, TEXT_LEN] int64 token ids -> [B, TEXT_LEN, TEXT_DIM] float32 context on the ids' device."""
    return embedding_table().to(ids.device)[ids]


def encode(text: str) -> torch.Tensor:
    """Prompt text -> [1, TEXT_LEN, TEXT_DIM] float32 context (all zeros for the empty prompt)."""
    return embed_ids(torch.tensor([word_ids(parse_prompt(text))]))
