"""Save / load a state dict as several safetensors files of at most 15 MiB each (under a 16 MiB-per-file
transfer limit); `join_shards` writes the single published checkpoint."""

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

MAX_SHARD_BYTES = 15 * 2**20


def save_shards(state: dict[str, torch.Tensor], folder: Path, max_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """Write `state` as folder/part-00.safetensors, part-01, ... in key order, each at most ~max_bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.safetensors"):
        old.unlink()
    parts, current, size = [], {}, 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > max_bytes:
            parts.append(current)
            current, size = {}, 0
        current[key], size = tensor.contiguous(), size + nbytes
    parts.append(current)
    paths = [folder / f"part-{i:02d}.safetensors" for i in range(len(parts))]
    for part, path in zip(parts, paths):
        save_file(part, str(path))
    return paths


def load_shards(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of folder/part-*.safetensors in one dict."""
    state = {}
    for path in sorted(Path(folder).glob("part-*.safetensors")):
        state.update(load_file(str(path)))
    if not state:
        raise FileNotFoundError(f"no part-*.safetensors in {folder}")
    return state


def join_shards(folder: Path, out_path: Path, metadata: dict[str, str] | None = None) -> None:
    """Merge a shard folder into one safetensors file (the checkpoint UNETLoader reads)."""
    save_file(load_shards(folder), str(out_path), metadata=metadata)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Join a shard folder (e.g. a run's ema/) into one checkpoint.")
    p.add_argument("folder")
    p.add_argument("out")
    args = p.parse_args()
    join_shards(Path(args.folder), Path(args.out), metadata={"format": "pt"})
    print(f"wrote {args.out}")
