"""Does the reuse cache in host memory (`cache_device` cpu) hold exactly what was written, with GPU work queued ahead?

0.3's ResidualCache.write_rows copied the encoded rows to the host with non_blocking=True and indexed them into the
host cache at once: the host-side index_copy_ could read the pinned buffer before the copy landed. This check writes
Wan 14B 720p-sized rows (32,760 tokens x 5120 channels, keep 0.5 of 2 rows) into a host cache right after a queue of
large GPU matmuls, three ways:

- `v0.3_copy`: the 0.3 code, line for line (the control that shows the race),
- `host`: ResidualCache.write_rows as shipped, cache in host memory,
- `gpu`: ResidualCache.write_rows as shipped, cache on the GPU (the reference path),

and counts rows whose decoded value differs from what the same encoding gives without any copy.

    python -m research.bench.cache_check --out results/      # needs CUDA; writes <out>/cache_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def _pack():
    sys.path.insert(0, str(REPO.parent))
    import importlib.util

    spec = importlib.util.spec_from_file_location("comfyui_tape_core", REPO / "tape_core" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "tape_core")])  # fmt: skip
    mod = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_tape_core"] = mod
    spec.loader.exec_module(mod)
    return mod


def _busy(dev, n: int = 12):
    """Queue GPU work so that the copies below start long after the host calls that follow them."""
    a = torch.randn(8192, 8192, device=dev)
    for _ in range(n):
        a = a @ a
        a = a / a.norm()
    return a


def _write_v03(cache, flat, values):
    """ResidualCache.write_rows of 0.3, line for line (the race this check exists for)."""
    rows = values.reshape(-1, values.shape[-1])
    idx = flat.to(cache.device, non_blocking=True)
    from comfyui_tape_core.cache import row_chunks

    for i, j in row_chunks(rows.shape[0]):
        data, scale = cache._encode(rows[i:j])
        cache.data.index_copy_(0, idx[i:j], data.to(cache.device, non_blocking=True))
        if scale is not None:
            cache.scale.index_copy_(0, idx[i:j], scale.to(cache.device, non_blocking=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/")
    ap.add_argument("--tokens", type=int, default=32760)
    ap.add_argument("--channels", type=int, default=5120)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("cache_check needs CUDA")
    core = _pack()
    dev = torch.device("cuda")
    rows, n, c = 2, a.tokens, a.channels
    g = torch.Generator(device="cpu").manual_seed(0)
    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows * n, "channels": c}
    for fmt in ("fp8", "bf16"):
        for way in ("v0.3_copy", "host", "gpu"):
            wrong = []
            for _ in range(a.repeats):
                values = torch.randn(rows * n // 2, c, generator=g).to(dev, torch.bfloat16)
                flat = torch.randperm(rows * n, generator=g)[: rows * n // 2].to(dev)
                where = "cpu" if way != "gpu" else dev
                cache = core.ResidualCache.zeros((rows, n, c), fmt, where)
                torch.cuda.synchronize()
                _busy(dev)
                (_write_v03 if way == "v0.3_copy" else core.ResidualCache.write_rows)(cache, flat, values)
                torch.cuda.synchronize()
                got = cache.decode(dev, torch.float32).view(-1, c).index_select(0, flat)
                ref = core.ResidualCache(values.view(1, -1, c), fmt, dev).decode(dev, torch.float32).view(-1, c)
                wrong.append(int((got != ref).any(dim=1).sum()))
            result[f"{fmt}_{way}_wrong_rows"] = wrong
            print(f"{fmt} {way}: rows wrong per repeat {wrong} of {rows * n // 2}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache_check.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
