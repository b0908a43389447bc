"""Train the testbed WanModel with Wan's rectified-flow objective on generated clips.

Run from the repository root with ComfyUI on PYTHONPATH:
    python -m research.testbed.train --out-dir runs/run1 --deadline 555             # GPU, time-boxed
    python -m research.testbed.train --out-dir runs/run2 --resume runs/run1/resume  # continues the schedule
    python -m research.testbed.train --smoke --out-dir runs/smoke                   # a few CPU steps (tests)

What the model sees matches ComfyUI's sampler exactly (comfy/model_sampling.py CONST +
ModelSamplingDiscreteFlow): x_t = (1 - t) x0 + t noise, target v = noise - x0, timestep t * 1000, where x0
is `latent.frames_to_model_space(frames)`, i.e. the Wan21 latent after `process_in`. 10 % of the prompts
are dropped to the empty prompt (all-zero context) so classifier-free guidance works.

Every step's data, timesteps and noise are seeded from (seed, step), so a resumed run continues the same
stream. Outputs in --out-dir: `resume/` (model weights as bf16 shards + state.json: small enough to carry
between time-boxed runs), `ema/` (the EMA weights, what gets published) and `loss.csv`.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data, latent, vocab
from . import model as tb_model
from .shards import load_shards, save_shards

T_START = time.time()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", required=True)
    p.add_argument("--resume", default=None, help="a resume/ folder written by an earlier run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=32, help="clips per step at the full shape")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="frame width = height in pixels")
    p.add_argument("--small-frames", type=int, default=8)
    p.add_argument("--small-size", type=int, default=48)
    p.add_argument("--small-every", type=int, default=4, help="every Nth step uses the small shape")
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--min-lr-ratio", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--rewarmup", type=int, default=100, help="LR ramp after a resume (Adam moments restart)")
    p.add_argument(
        "--new-cycle", action="store_true", help="after a resume: a fresh cosine from --lr over the remaining steps"
    )
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--train-shift", type=float, default=3.0, help="timestep shift of the training t-distribution")
    p.add_argument("--cfg-dropout", type=float, default=0.1)
    p.add_argument("--total-steps", type=int, default=0, help="0: fit the schedule into --schedule-seconds")
    p.add_argument("--schedule-seconds", type=float, default=1050.0, help="training time over all runs")
    p.add_argument("--deadline", type=float, default=0.0, help="stop this process after so many seconds")
    p.add_argument("--max-steps", type=int, default=0, help="stop this process after so many steps")
    p.add_argument(
        "--finish-by-deadline",
        action="store_true",
        help="last run: shorten the schedule if its remaining steps would not fit before --deadline",
    )
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--anchored-motion", action="store_true", help="objects start near their entry edge (data.py)")
    p.add_argument(
        "--frame-noise",
        type=float,
        default=0.0,
        help="share of clips with an independent noise level per frame (diffusion forcing); 0 in runs 1-4",
    )
    p.add_argument(
        "--object-weight",
        type=float,
        default=0.0,
        help="extra loss weight on object pixels (loss weight 1 + w * coverage; 0 = plain MSE, runs 1-3)",
    )
    p.add_argument(
        "--grow-from",
        default=None,
        help="a trained checkpoint (safetensors) to deepen: see --blocks; its weights start the new model",
    )
    p.add_argument("--blocks", type=int, default=8, help="transformer blocks (8 for runs 1-5, 16 for the deep one)")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run: 3 steps, tiny clips")
    args = p.parse_args(argv)
    if args.smoke:
        args.device, args.batch, args.frames, args.size = "cpu", 2, 4, 16
        args.small_frames, args.small_size, args.small_every = 2, 16, 2
        args.total_steps, args.max_steps = args.total_steps or 3, args.max_steps or 3
        args.log_every, args.warmup = 1, 1
    return args


def sample_timesteps(gen: torch.Generator, n: int, shift: float) -> torch.Tensor:
    """[n] flow times t in (0, 1]: uniform u pushed towards noise like ComfyUI's shifted flow schedule."""
    u = torch.rand(n, generator=gen)
    t = shift * u / (1 + (shift - 1) * u)
    return t.clamp(1e-3, 1.0)


def make_batch(clips: data.ClipGenerator, args, step: int, device) -> tuple[torch.Tensor, ...]:
    """(x_t, t, context, target, weight) for one step; fully determined by (seed, step).

    x_t, target: [B, 16, F, H/2, W/2] float32; t: [B] in (0, 1], or [B, F] with --frame-noise (Wan's per-frame
    timesteps, as Wan 2.2 uses them); context: [B, TEXT_LEN, 4096];
    weight: per-latent-pixel loss weight [B, 1, F, H/2, W/2] (None: plain MSE).
    """
    gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    small = args.small_every > 0 and step % args.small_every == args.small_every - 1
    frames, size = (args.small_frames, args.small_size) if small else (args.frames, args.size)
    # Keep the token count per step about constant so every step costs about the same.
    n = max(1, round(args.batch * args.frames * args.size**2 / (frames * size**2))) if small else args.batch
    batch = clips.sample(gen, n, frames, size, with_alpha=args.object_weight > 0)
    ids = batch.word_ids.clone()
    ids[torch.rand(n, generator=gen) < args.cfg_dropout] = vocab.PAD_ID  # empty prompt: all-zero context
    t = sample_timesteps(gen, n, args.train_shift)
    if args.frame_noise > 0:
        # A frame noisier than its neighbours can only be predicted by carrying their content along the prompt's
        # motion, so these clips teach motion directly; sampling (one level for all frames) stays in distribution
        # through the other clips.
        per_frame = sample_timesteps(gen, n * frames, args.train_shift).view(n, frames)
        mixed = torch.rand(n, generator=gen) < args.frame_noise
        t = torch.where(mixed[:, None], per_frame, t[:, None].expand(n, frames))
    # Noise is drawn on the device (a CPU draw + copy of ~8M values would cost as much as a GPU step).
    gen_dev = torch.Generator(device).manual_seed(args.seed * 1_000_003 + step)
    noise = torch.randn((n, latent.LATENT_CHANNELS, frames, size // 2, size // 2), generator=gen_dev, device=device)
    x0 = latent.frames_to_model_space(batch.frames)
    t_b = t.to(device).view(n, 1, -1, 1, 1)  # [B, 1, 1 or F, 1, 1]
    x_t = (1 - t_b) * x0 + t_b * noise
    weight = None
    if batch.alpha is not None:
        # Objects cover ~15 % of a frame, so plain MSE is mostly background texture; weighting their pixels
        # puts more of the gradient on the object and its motion.
        cover = F.avg_pool2d(batch.alpha.flatten(0, 1)[:, None], 2).view(n, 1, frames, size // 2, size // 2)
        weight = 1 + args.object_weight * cover
    return x_t, t.to(device), vocab.embed_ids(ids.to(device)), noise - x0, weight


def lr_at(step: int, total: int, args, resumed_at: int | None) -> float:
    """Linear warm-up, cosine decay to min_lr_ratio; after a resume a short ramp while Adam's moments refill."""
    warm = min(1.0, (step + 1) / args.warmup)
    progress = min(1.0, step / max(total, 1))
    if args.new_cycle and resumed_at is not None:
        progress = min(1.0, (step - resumed_at) / max(total - resumed_at, 1))
    cosine = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    ramp = 1.0 if resumed_at is None else min(1.0, (step - resumed_at + 1) / args.rewarmup)
    return args.lr * warm * cosine * ramp


def make_optimizer(net: torch.nn.Module, args) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on norms, biases, modulation vectors)."""
    decay = [p for p in net.parameters() if p.ndim >= 2 and p.shape[0] > 1]
    rest = [p for p in net.parameters() if not (p.ndim >= 2 and p.shape[0] > 1)]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99), fused=args.device.startswith("cuda"))


def save_state(out_dir: Path, net, ema, state: dict) -> None:
    """resume/ (bf16 weights + state.json) and ema/ (bf16 EMA weights), in shards small enough to transfer."""
    save_shards(tb_model.export_state_dict(net), out_dir / "resume")
    (out_dir / "resume" / "state.json").write_text(json.dumps(state))
    save_shards({k: v.to(torch.bfloat16) for k, v in ema.items()}, out_dir / "ema")
    with open(out_dir / "loss.csv", "w") as f:
        f.write("step,loss,seconds\n")
        f.writelines(f"{s},{loss:.5f},{sec:.1f}\n" for s, loss, sec in state["losses"])


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.device == "cpu":
        import comfy.cli_args

        comfy.cli_args.args.cpu = True  # before comfy.model_management is imported (it probes CUDA)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = torch.device(args.device)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    net = tb_model.build_model(device, seed=args.seed, config={**tb_model.TESTBED_CONFIG, "num_layers": args.blocks})
    if args.grow_from and not args.resume:
        from safetensors.torch import load_file

        net.load_state_dict(tb_model.grow_state_dict(load_file(args.grow_from), args.blocks))
    state = {"step": 0, "total_steps": args.total_steps, "train_seconds": 0.0, "losses": [], "resumes": []}
    resumed_at = None
    if args.resume:
        net.load_state_dict({k: v.float() for k, v in load_shards(Path(args.resume)).items()})
        state = json.loads((Path(args.resume) / "state.json").read_text())
        resumed_at = state["step"]
        state["total_steps"] = args.total_steps or state["total_steps"]
        state["resumes"].append(resumed_at)
    # EMA restarts from the weights on resume: run 2 is far longer than the EMA's ~1000-step memory.
    ema = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
    opt = make_optimizer(net, args)
    clips = data.ClipGenerator(device, anchored_motion=args.anchored_motion)
    state.setdefault("args", []).append(vars(args))  # provenance: one entry per run
    n_params = sum(p.numel() for p in net.parameters())
    print(f"testbed WanModel: {n_params / 1e6:.2f} M parameters, device {device}, step {state['step']}", flush=True)

    t_loop, step0, window = time.time(), state["step"], []
    t_log = t_loop
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    while True:
        step = state["step"]
        if state["total_steps"] and step >= state["total_steps"]:
            break
        if args.max_steps and step - step0 >= args.max_steps:
            break
        if args.deadline and time.time() - T_START > args.deadline - 20:  # leave time to save
            break
        x_t, t, ctx, target, weight = make_batch(clips, args, step, device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, state["total_steps"] or 10**9, args, resumed_at)
        with autocast:
            v = net(x_t, t * 1000, ctx)
        if weight is None:
            loss = F.mse_loss(v.float(), target)
        else:  # normalised so the loss (and the learning rate's meaning) stays on the plain-MSE scale
            loss = (weight * (v.float() - target) ** 2).mean() / weight.mean()
        if not math.isfinite(loss.item()):  # one bad step must not poison a time-boxed run: skip it
            print(f"step {step}: non-finite loss, skipped", flush=True)
            state["step"] = step + 1
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        decay = min(args.ema, (1 + step - (resumed_at or 0)) / (10 + step - (resumed_at or 0)))
        with torch.no_grad():
            params = dict(net.named_parameters())
            torch._foreach_lerp_([ema[k] for k in params], list(params.values()), 1 - decay)
        window.append(loss.detach())
        state["step"] = step + 1
        if state["step"] % args.log_every == 0:
            mean_loss = torch.stack(window).mean().item()
            window = []
            elapsed = time.time() - t_loop
            recent_sec_per_step = (time.time() - t_log) / args.log_every
            t_log = time.time()
            state["losses"].append((state["step"], mean_loss, state["train_seconds"] + elapsed))
            sec_per_step = elapsed / (state["step"] - step0)
            if not state["total_steps"] and state["step"] - step0 >= 100:
                # Fit the whole cosine schedule into the planned training time, measured on this device.
                state["total_steps"] = int(args.schedule_seconds / sec_per_step)
                mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
                print(f"schedule: {state['total_steps']} steps, {sec_per_step:.3f} s/step, {mem:.1f} GiB", flush=True)
            if args.finish_by_deadline and args.deadline and state["total_steps"] and state["step"] - step0 >= 200:
                # Judge the pace only once it is steady: the first steps of a process are slow (allocator,
                # kernel autotuning); a too-early estimate cut run 2 of the published model to 222 s.
                left = args.deadline - 20 - (time.time() - T_START)
                fit = state["step"] + int(left / recent_sec_per_step)
                if fit < state["total_steps"]:
                    print(f"schedule shortened: {state['total_steps']} -> {fit} steps to finish in time", flush=True)
                    state["total_steps"] = fit
            print(
                f"step {state['step']:6d}  loss {mean_loss:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                f"{sec_per_step:.3f} s/step  t+{time.time() - T_START:.0f}s",
                flush=True,
            )
    state["train_seconds"] += time.time() - t_loop
    save_state(out_dir, net, ema, state)
    print(
        f"saved step {state['step']} of {state['total_steps']} to {out_dir} "
        f"({state['train_seconds']:.0f} s trained in all)",
        flush=True,
    )
    return state


if __name__ == "__main__":
    main(sys.argv[1:])
    os._exit(0)  # skip slow interpreter teardown of CUDA / comfy threads
