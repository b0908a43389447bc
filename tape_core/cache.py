"""Per-token residual cache for `reuse` mode: each pruned token gets its OWN update from the last step it was kept.

One cache slot holds, for every token row of a call, the residual (block output - block input) the slot's blocks
computed for it the last time it was computed. Storage formats (memory per slot, B rows x L tokens x C channels):
- "bf16": the residual in bf16, 2 bytes per value;
- "fp8":  float8_e4m3fn values with one fp32 scale per token row (absmax / 448), 1 byte per value + 4 bytes per row.
  Relative error of a cached update ~2^-4 of its own size: far below the staleness of an update one step old.
The cache lives on the compute device, or on the host ("cpu") where each use copies it over and back.
"""

from __future__ import annotations

import torch

CACHE_FORMATS = ("fp8", "bf16")


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """t on `device`. Asynchronous only towards an accelerator: a device-to-host copy with non_blocking=True lands in
    a pinned buffer some time later, and a host operation that reads it at once (index_copy_) reads the buffer
    before the copy: with GPU work queued ahead every row came out wrong (BENCHMARKS.md, host reuse cache)."""
    return t.to(device, non_blocking=device.type != "cpu")


_FP8 = getattr(torch, "float8_e4m3fn", None)
_FP8_MAX = 448.0


def bytes_per_slot(rows: int, tokens: int, channels: int, fmt: str) -> int:
    """Memory of one cache slot: rows x tokens token rows of `channels` values."""
    n = rows * tokens
    return n * channels * (1 if fmt == "fp8" else 2) + (4 * n if fmt == "fp8" else 0)


# Rows per encode / decode piece: the temporaries of a cache operation stay at CHUNK_ROWS x C x 4 bytes (168 MB for
# Wan 14B) instead of a full activation in fp32 (3.1 GB at Wan 14B 720p with CFG).
CHUNK_ROWS = 8192


def row_chunks(n: int):
    """(start, stop) pieces of CHUNK_ROWS rows covering range(n)."""
    return ((i, min(n, i + CHUNK_ROWS)) for i in range(0, n, CHUNK_ROWS))


class ResidualCache:
    """residual rows [N, C] (N = B*L token rows) in a compact format; `add_into` and `write_rows` keep shapes static.

    fmt: "fp8" | "bf16". device: where the data lives (the compute device, or "cpu").
    """

    def __init__(self, full: torch.Tensor, fmt: str = "fp8", device: torch.device | str | None = None):
        """full [B, L, C]: the residual of every token (a dense step's)."""
        rows = full.reshape(-1, full.shape[-1])
        self._alloc(tuple(full.shape), fmt, device if device is not None else full.device)
        for i, j in row_chunks(rows.shape[0]):
            self._fill(i, j, rows[i:j])

    @classmethod
    def zeros(cls, shape, fmt: str = "fp8", device="cpu"):
        """A cache of zero residuals for shape (B, L, C), made without a full-size temporary."""
        cache = cls.__new__(cls)
        cache._alloc(tuple(shape), fmt, device)
        cache.data.zero_()  # 0 in bf16, and the bits of 0.0 in float8_e4m3fn
        if cache.scale is not None:
            cache.scale.fill_(1e-12 / _FP8_MAX)
        return cache

    @classmethod
    def from_difference(cls, y: torch.Tensor, x: torch.Tensor, fmt: str = "fp8", device=None):
        """The residual y - x of every token, y and x [B, L, C] (x may be in host memory), built piece by piece:
        neither x on y's device nor the whole difference is ever held (each a full activation)."""
        cache = cls.__new__(cls)
        cache._alloc(tuple(y.shape), fmt, device if device is not None else y.device)
        y_rows, x_rows = y.reshape(-1, y.shape[-1]), x.reshape(-1, x.shape[-1])
        for i, j in row_chunks(y_rows.shape[0]):
            cache._fill(i, j, y_rows[i:j] - _to(x_rows[i:j], y.device))
        return cache

    def _alloc(self, shape: tuple, fmt: str, device):
        if fmt not in CACHE_FORMATS:
            raise ValueError(f"cache format must be one of {CACHE_FORMATS}, got '{fmt}'")
        if fmt == "fp8" and _FP8 is None:
            fmt = "bf16"  # torch without float8: fall back, same behaviour at 2 bytes per value
        self.fmt = fmt
        self.shape = shape
        self.device = torch.device(device)
        n, c = shape[0] * shape[1], shape[-1]
        # [N, C]: bf16, or fp8 bits as uint8 (index_copy_ supports uint8 on every device); [N, 1] fp32 scales
        self.data = torch.empty(n, c, dtype=torch.bfloat16 if fmt == "bf16" else torch.uint8, device=self.device)
        self.scale = torch.empty(n, 1, dtype=torch.float32, device=self.device) if fmt == "fp8" else None

    def _fill(self, i: int, j: int, rows: torch.Tensor):
        data, scale = self._encode(rows)
        self.data[i:j].copy_(_to(data, self.device))
        if scale is not None:
            self.scale[i:j].copy_(_to(scale, self.device))

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size() + (0 if self.scale is None else self.scale.numel() * 4)

    def _encode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.fmt == "bf16":
            return rows.to(torch.bfloat16), None
        scale = rows.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12) / _FP8_MAX  # [n, 1]
        return (rows.float() / scale).to(_FP8).view(torch.uint8), scale

    def _decode(self, i: int, j: int, device, dtype) -> torch.Tensor:
        device = torch.device(device)
        data = _to(self.data[i:j], device)
        if self.scale is None:
            return data.to(dtype)
        return data.view(_FP8).to(dtype).mul_(_to(self.scale[i:j], device).to(dtype))

    def decode(self, device, dtype) -> torch.Tensor:
        """The whole cache as [B, L, C] in `dtype` on `device` (a new tensor)."""
        out = torch.empty(self.data.shape, dtype=dtype, device=device)
        for i, j in row_chunks(out.shape[0]):
            out[i:j] = self._decode(i, j, device, dtype)
        return out.view(self.shape)

    def add_into(self, x: torch.Tensor, alpha: float = 1.0) -> None:
        """x [B, L, C] (contiguous) += alpha * cache, piece by piece: no full-size temporary."""
        rows = x.view(-1, x.shape[-1])
        for i, j in row_chunks(rows.shape[0]):
            rows[i:j].add_(self._decode(i, j, x.device, x.dtype), alpha=alpha)

    def write_rows(self, flat: torch.Tensor, values: torch.Tensor) -> None:
        """Overwrite token rows `flat` [K'] (into the [B*L] rows) with values [.., C] (any leading shape)."""
        rows = values.reshape(-1, values.shape[-1])
        idx = _to(flat, self.device)
        for i, j in row_chunks(rows.shape[0]):
            data, scale = self._encode(rows[i:j])
            self.data.index_copy_(0, idx[i:j], _to(data, self.device))
            if scale is not None:
                self.scale.index_copy_(0, idx[i:j], _to(scale, self.device))
