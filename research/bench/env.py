"""Import real ComfyUI for the benchmark (GPU or CPU), load this repo as the pack, capture log records, time.

ComfyUI runs with --highvram semantics on the GPU: the model stays fully resident, so no row is ever timed
with partially loaded weights (a 14B bf16 model, 28.6 GB, fits an 80 GB H100).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def stub_av_if_missing():
    """ComfyUI's comfy_api imports PyAV (video file I/O) at import time; nothing on the sampling path uses it.
    Where it is not installed, a stub module stands in, so the benchmark does not need the 35 MB wheel."""
    import types

    try:
        import av  # noqa: F401

        return
    except ImportError:
        pass

    class _Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    for name in ("av", "av.container", "av.subtitles", "av.subtitles.stream", "av.logging"):
        sys.modules[name] = _Stub(name)


def import_comfy(device: str):
    """Put ComfyUI on sys.path and set its CLI args before model_management picks a device."""
    stub_av_if_missing()
    sys.path.insert(0, str(REPO / "tests"))
    from comfy_harness import find_comfyui  # read-only use of the test harness's locator

    root = find_comfyui()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import comfy.cli_args

    comfy.cli_args.args.cpu = device == "cpu"
    comfy.cli_args.args.highvram = device != "cpu"
    comfy.cli_args.args.disable_all_custom_nodes = True
    import comfy.model_management  # noqa: F401  (initialises the device now)

    return root


def load_pack():
    from comfy_harness import load_pack as _load

    return _load()


class LogCapture(logging.Handler):
    """Keeps every log record (TAPE summaries carry `tape_stats`; EasyCache logs its skip count)."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def mark(self) -> int:
        return len(self.records)

    def since(self, mark: int) -> list[logging.LogRecord]:
        return self.records[mark:]


def install_log_capture() -> LogCapture:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    cap = LogCapture()
    logging.getLogger().setLevel(logging.INFO)  # basicConfig is a no-op when ComfyUI configured logging first
    logging.getLogger().addHandler(cap)
    logging.getLogger("TAPE").setLevel(logging.INFO)
    return cap


class Clock:
    """CUDA events on the GPU (no host sync inside the timed region), perf_counter on the CPU."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.cuda = torch.device(device).type == "cuda"

    def mark(self):
        if self.cuda:
            ev = self.torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def ms(self, a, b) -> float:
        if self.cuda:
            return a.elapsed_time(b)
        return (b - a) * 1e3

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()


def time_fn(fn, clock: Clock, warmup: int = 2, reps: int = 20, budget_ms: float = 1500.0) -> dict:
    """Median (and spread) of fn() in ms. Reps shrink so one measurement takes about budget_ms."""
    for _ in range(warmup):
        fn()
    clock.sync()
    a = clock.mark()
    fn()
    b = clock.mark()
    clock.sync()
    first = clock.ms(a, b)
    n = max(3, min(reps, int(budget_ms / max(first, 1e-3))))
    times = []
    for _ in range(n):
        a = clock.mark()
        fn()
        b = clock.mark()
        times.append((a, b))
    clock.sync()
    ms = [clock.ms(a, b) for a, b in times]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "n": n}


def start_bench(tiny: bool):
    """Every bench script's start: ComfyUI on the CPU (tiny checks) or the GPU, this pack, TAPE's log records
    captured. Returns (device, ComfyUI root, log capture)."""
    device = "cpu" if tiny else "cuda"
    root = import_comfy(device)
    load_pack()
    return device, root, install_log_capture()


def run_meta(root, torch, device: str, **fields) -> dict:
    """What every result JSON records: the date, the run's own fields, versions and the device."""
    import datetime
    import platform

    m = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **fields}
    m.update(torch=torch.__version__, python=platform.python_version(), device=device)
    try:
        m["comfyui_version"] = (Path(root) / "comfyui_version.py").read_text().split('"')[1]
    except (OSError, IndexError):
        pass
    if device == "cuda":
        m["gpu"] = torch.cuda.get_device_name()
        m["gpu_memory_gb"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    return m
