"""The testbed model's parts: latent map, clip generator, vocabulary, checkpoint loading, nodes, training smoke."""

from pathlib import Path

import pytest
import torch
from comfyui_tape.nodes.testbed_nodes import TapeTestbedDecode, TapeTestbedPrompt
from comfyui_tape.research.testbed import data
from comfyui_tape.testbed import latent, vocab

CHECKPOINT = Path(__file__).resolve().parents[1] / "testbed" / "TAPE_demo_toy_model_8blocks.safetensors"


def _frames(b=2, f=3, h=8, w=10, seed=0):
    """Random 8-bit frames [B, F, H, W, 3] as floats in [0, 1]."""
    return torch.randint(0, 256, (b, f, h, w, 3), generator=torch.Generator().manual_seed(seed)) / 255.0


def test_latent_map_round_trips_exactly():
    frames = _frames()
    z = latent.frames_to_model_space(frames)
    assert z.shape == (2, 16, 3, 4, 5)
    assert torch.equal(z[:, 12:], torch.zeros_like(z[:, 12:]))  # the 4 spare channels are zero
    back = latent.decode(latent.encode(frames))  # through ComfyUI's LATENT space (process_out / process_in)
    assert torch.equal((back * 255).round(), (frames * 255).round())
    torch.testing.assert_close(latent.model_space_to_frames(z), frames, atol=1e-6, rtol=0)


def test_latent_space_matches_comfy_wan21_format():
    import comfy.latent_formats

    fmt = comfy.latent_formats.Wan21()
    frames = _frames(seed=1)
    lat = latent.encode(frames)
    # KSampler feeds the model process_in(LATENT): that must be exactly the model-space data trained on.
    torch.testing.assert_close(fmt.process_in(lat), latent.frames_to_model_space(frames), atol=1e-5, rtol=0)
    torch.testing.assert_close(fmt.process_out(latent.frames_to_model_space(frames)), lat, atol=1e-5, rtol=0)


def test_empty_latent_node_values_give_testbed_shape():
    v = latent.empty_latent_node_values(frames=16, size=64)
    assert v == {"width": 256, "height": 256, "length": 61, "batch_size": 1}
    # EmptyHunyuanLatentVideo's formula (comfy_extras/nodes_hunyuan.py):
    shape = [1, 16, (v["length"] - 1) // 4 + 1, v["height"] // 8, v["width"] // 8]
    assert shape == [1, 16, 16, 32, 32]
    small = latent.empty_latent_node_values(frames=8, size=48)
    assert ((small["length"] - 1) // 4 + 1, small["height"] // 8) == (8, 24)


@pytest.fixture(scope="module")
def clips():
    return data.ClipGenerator()


def test_clip_generator_is_deterministic_per_seed(clips):
    a = clips.sample(torch.Generator().manual_seed(7), 3, frames=8, size=48)
    b = clips.sample(torch.Generator().manual_seed(7), 3, frames=8, size=48)
    c = clips.sample(torch.Generator().manual_seed(8), 3, frames=8, size=48)
    assert a.frames.shape == (3, 8, 48, 48, 3)
    assert torch.equal(a.frames, b.frames) and a.prompts == b.prompts and torch.equal(a.word_ids, b.word_ids)
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.min() >= 0 and a.frames.max() <= 1
    # Pinned: the published checkpoint was trained on exactly this distribution; a change here needs a retrain.
    assert a.prompts[0] == "rocket moving left slow on coffee, camera pan-down"
    assert float(a.frames.sum()) == pytest.approx(46881.15, rel=1e-4)


def test_anchored_motion_starts_objects_at_their_entry_edge(clips):
    specs = data.specs_from_prompts(["cat moving right fast on brick, camera static"] * 64)
    t = torch.arange(8.0)[None]
    free, _, _ = clips._object_paths(specs, torch.Generator().manual_seed(0), 64, t, False)
    anchored, _, _ = clips._object_paths(specs, torch.Generator().manual_seed(0), 64, t, True)
    assert anchored[:, 0].max() < -0.4 < free[:, 0].max()  # starts on the left, then moves right
    assert (anchored.diff(dim=1) > 0).all()


def _object_centroid_x(clips, prompt, frames=8, size=48):
    """Per-frame x centroid of the object: where the clip differs from the same clip without its object."""
    with_obj = clips.render(data.specs_from_prompts([prompt]), torch.Generator().manual_seed(3), frames, size)
    without = prompt.split(" on ")[1]  # same scene and camera, same random draws, no object
    bg = clips.render(data.specs_from_prompts([without]), torch.Generator().manual_seed(3), frames, size)
    mask = ((with_obj - bg).abs().sum(-1) > 0.05)[0].float()  # [F, H, W]
    xs = torch.arange(size, dtype=torch.float)
    return (mask.sum(1) * xs).sum(-1) / mask.sum((1, 2)).clamp(min=1)


def test_objects_move_in_the_prompted_direction(clips):
    right = _object_centroid_x(clips, "cat moving right fast on brick, camera static")
    left = _object_centroid_x(clips, "cat moving left fast on brick, camera static")
    still = _object_centroid_x(clips, "cat still on brick, camera static")
    assert (right.diff() > 0.5).all(), right
    assert (left.diff() < -0.5).all(), left
    assert (still.diff().abs() < 0.1).all(), still


def test_camera_pan_moves_the_background(clips):
    specs = data.specs_from_prompts(["grass, camera pan-right", "grass, camera static"])
    v = clips.render(specs, torch.Generator().manual_seed(0), 4, 48)
    assert (v[0, 1] - v[0, 0]).abs().mean() > 0.02  # panning: consecutive frames differ
    assert torch.equal(v[1, 1], v[1, 0])  # static camera, no object: identical frames


def test_vocabulary_embeddings_are_fixed():
    table = vocab.embedding_table()
    assert table.shape == (len(vocab.WORDS) + 1, 4096)
    assert torch.equal(table[-1], torch.zeros(4096))
    # Pinned values: if these change, the trained checkpoint no longer understands its prompts.
    cat = vocab.word_vector("cat")
    assert cat[:3].tolist() == pytest.approx([0.9131522, -0.7862570, 1.5205930], abs=1e-6)
    assert float(vocab.word_vector("brick").sum()) == pytest.approx(123.2825, abs=1e-3)
    a = vocab.encode("cat moving left on brick, camera pan-right")
    b = vocab.encode("camera pan-right, brick on left cat")
    assert a.shape == (1, vocab.TEXT_LEN, 4096)
    assert torch.equal(a.sort(dim=1).values, b.sort(dim=1).values)  # same tokens, order free
    assert torch.equal(vocab.encode(""), torch.zeros(1, vocab.TEXT_LEN, 4096))


def test_prompt_node_encodes_and_rejects_unknown_words():
    out = TapeTestbedPrompt.execute(prompt="Astronaut moving UP fast on space, camera zoom-in")
    cond = out.result[0]
    assert cond[0][0].shape == (1, vocab.TEXT_LEN, 4096) and cond[0][1] == {}
    with pytest.raises(ValueError) as err:
        TapeTestbedPrompt.execute(prompt="dog moving left on lava")
    msg = str(err.value)
    assert "dog" in msg and "lava" in msg and "astronaut" in msg and "pan-left" in msg  # names them, lists vocab


def test_decode_node_gives_frames():
    frames = _frames(b=1, f=4, h=6, w=6)
    out = TapeTestbedDecode.execute(samples={"samples": latent.encode(frames)}).result[0]
    assert out.shape == (4, 6, 6, 3)
    torch.testing.assert_close(out, frames[0], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def comfy_model():
    import comfy.sd

    assert CHECKPOINT.is_file(), f"missing {CHECKPOINT}"
    assert CHECKPOINT.stat().st_size <= 25 * 2**20
    return comfy.sd.load_diffusion_model(str(CHECKPOINT))


def test_checkpoint_loads_as_wan21_t2v_through_unetloader_path(comfy_model):
    import comfy.latent_formats
    import comfy.model_base
    import comfy.supported_models
    from comfyui_tape.testbed.model import TESTBED_CONFIG

    assert isinstance(comfy_model.model, comfy.model_base.WAN21)
    assert isinstance(comfy_model.model.model_config, comfy.supported_models.WAN21_T2V)
    assert isinstance(comfy_model.model.latent_format, comfy.latent_formats.Wan21)
    cfg = comfy_model.model.model_config.unet_config
    for key in ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim", "model_type"):
        assert cfg[key] == TESTBED_CONFIG[key], key


def test_comfy_sampler_sees_the_training_objective(comfy_model):
    """ComfyUI's denoised = x - sigma * v with v = the trained net at timestep sigma * 1000 (flow, CONST)."""
    from comfyui_tape.testbed import model as tb_model

    net = tb_model.build_model()
    net.load_state_dict({k: v.float() for k, v in comfy_model.model.diffusion_model.state_dict().items()})
    x = torch.randn(1, 16, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    ctx = vocab.encode("coin moving down on gravel, camera pan-left")
    sigma = torch.tensor([0.7])
    with torch.no_grad():
        v = net(x, sigma * 1000, ctx)
        denoised = comfy_model.model.apply_model(x, sigma, c_crossattn=ctx)
    torch.testing.assert_close(denoised, x - 0.7 * v, atol=2e-4, rtol=1e-4)


def test_train_smoke_runs_on_cpu(tmp_path):
    from comfyui_tape.research.testbed import train

    state = train.main(["--smoke", "--out-dir", str(tmp_path)])
    assert state["step"] == 3
    assert all(0 < loss < 10 for _, loss, _ in state["losses"])
    assert (tmp_path / "resume" / "state.json").is_file() and list((tmp_path / "ema").glob("part-*.safetensors"))
    resumed = train.main(
        ["--smoke", "--out-dir", str(tmp_path / "b"), "--resume", str(tmp_path / "resume"), "--total-steps", "5"]
    )
    assert resumed["step"] == 5 and resumed["resumes"] == [3]


def test_training_options_change_only_what_they_say():
    """--object-weight adds a loss weight and --frame-noise per-frame levels; with both off a step's batch is
    the one the published checkpoint was trained on (same draws)."""
    from comfyui_tape.research.testbed import train

    gen = data.ClipGenerator()
    base = train.parse_args(["--out-dir", "unused", "--smoke"])
    weighted = train.parse_args(["--out-dir", "unused", "--smoke", "--object-weight", "4"])
    x_t, t, ctx, target, weight = train.make_batch(gen, base, 0, torch.device("cpu"))
    x_w, t_w, _, target_w, weight_w = train.make_batch(gen, weighted, 0, torch.device("cpu"))
    assert weight is None and t.shape == (x_t.shape[0],)
    assert torch.equal(x_t, x_w) and torch.equal(t, t_w) and torch.equal(target, target_w)
    assert weight_w.shape == (x_t.shape[0], 1, *x_t.shape[2:])
    assert weight_w.min() == 1 and weight_w.max() > 2  # 1 off the object, up to 1 + 4 on it

    forced = train.parse_args(["--out-dir", "unused", "--smoke", "--frame-noise", "1"])
    x_f, t_f, *_ = train.make_batch(gen, forced, 0, torch.device("cpu"))
    assert t_f.shape == (x_f.shape[0], x_f.shape[2])  # one level per frame: Wan's [B, F] timesteps
    assert (t_f.std(dim=1) > 0.01).all()


def test_train_smoke_with_per_frame_noise_and_object_weight(tmp_path):
    from comfyui_tape.research.testbed import train

    state = train.main(["--smoke", "--out-dir", str(tmp_path), "--frame-noise", "1", "--object-weight", "4"])
    assert state["step"] == 3 and all(0 < loss < 10 for _, loss, _ in state["losses"])


@pytest.mark.parametrize(
    "prompt, direction, lo, hi",
    [
        ("cat moving right slow on brick, camera static", "right", 0.8, 1.8),
        ("rocket moving up fast on space, camera static", "up", 2.0, 3.4),
        ("gravel, camera pan-left", "right", 1.7, 5.0),  # pan-left slides the scene right
        ("cat still on brick, camera static", "left", -0.05, 0.05),
    ],
)
def test_motion_measure_recovers_rendered_motion(clips, prompt, direction, lo, hi):
    from comfyui_tape.research.testbed import motion

    video = clips.render(data.specs_from_prompts([prompt]), torch.Generator().manual_seed(5), 16, 64)[0]
    m = motion.clip_motion(video, direction)
    assert lo <= m["along"] <= hi, m
    assert m["across"] < 0.7, m
    assert m["right_way"] == (1.0 if lo > 0 else 0.0), m
    backwards = motion.clip_motion(video.flip(0), direction)  # the same clip played backwards
    assert backwards["along"] <= -lo if lo > 0 else abs(backwards["along"]) < 0.05, backwards
