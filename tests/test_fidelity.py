"""CI slice of the fidelity benchmark (BENCHMARKS.md, "Fidelity"): on the trained testbed model, TAPE's defaults
must beat naive per-frame pruning on temporal error at the same keep ratio, and stay above a PSNR floor set from
the measured table."""

import pytest
from comfy_harness import REPO
from comfyui_tape.tape_core import TapeConfig
from comfyui_tape.testbed import fidelity
from comfyui_tape.testbed.sample import load_model

CKPT = REPO / "testbed" / "tape_testbed_wan.safetensors"
PROMPTS = fidelity.PROMPTS[:6]
SEEDS = (1,)
DEFAULTS_PSNR_FLOOR_DB = 14.5  # measured 16.0 dB at this CI size (BENCHMARKS.md, "CI check"); 1.5 dB margin


@pytest.fixture(scope="module")
def table():
    model = load_model(str(CKPT))
    naive = next(v for v in fidelity.variants(0.5) if v.name.startswith("naive per-frame (attention, skip)"))
    scale = fidelity.Variant("another seed", seed_offset=1000)
    rows = [naive, fidelity.Variant("TAPE node defaults", TapeConfig()), scale]
    return fidelity.run(model, PROMPTS, SEEDS, frames=8, size=48, steps=10, rows=rows, progress=lambda *_: None)


def test_tape_defaults_beat_naive_pruning_on_temporal_error(table):
    s = table["summary"]
    naive, tape = s["naive per-frame (attention, skip)"], s["TAPE node defaults"]
    assert tape["temporal_err"] < naive["temporal_err"], (tape, naive)
    assert tape["keep"] == pytest.approx(naive["keep"], abs=0.02)  # same mean keep ratio


def test_tape_defaults_stay_above_psnr_floor_and_closer_than_another_seed(table):
    s = table["summary"]
    tape, other = s["TAPE node defaults"], s["another seed"]
    print({k: {m: round(v, 4) for m, v in row.items()} for k, row in s.items()})
    assert tape["psnr"] >= DEFAULTS_PSNR_FLOOR_DB, tape
    assert tape["ssim"] >= other["ssim"] + 0.1, (tape, other)  # structurally the same video, not another one
