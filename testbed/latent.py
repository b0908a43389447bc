"""The testbed's fixed, invertible frames <-> latent map (stands in for Wan's VAE).

One latent frame per video frame, half the spatial size, 16 channels:
model-space z = [pixel_unshuffle_2(rgb * 2 - 1) (12 channels), zeros (4 channels)].

ComfyUI's sampler works in "model space": KSampler applies the Wan 2.1 latent format's `process_in`
((latent - mean) / std per channel) before the model and `process_out` after. So a LATENT as ComfyUI
holds it is `process_out(z) = z * std + mean`; the model is trained on z directly, and decoding a
KSampler result undoes process_out first. The Wan21 mean/std are copied below so this module needs no
ComfyUI import; tests check them against `comfy.latent_formats.Wan21`.
"""

import torch
import torch.nn.functional as F

LATENT_CHANNELS = 16
RGB_CHANNELS = 12  # 3 colours x (2 x 2) sub-pixels; the other 4 channels are zero in model space.

WAN21_MEAN = (
    -0.7571,
    -0.7089,
    -0.9113,
    0.1075,
    -0.1745,
    0.9653,
    -0.1517,
    1.5508,
    0.4134,
    -0.0715,
    0.5517,
    -0.3632,
    -0.1922,
    -0.9497,
    0.2503,
    -0.2921,
)
WAN21_STD = (
    2.8184,
    1.4541,
    2.3275,
    2.6558,
    1.2196,
    1.7708,
    2.6052,
    2.0743,
    3.2687,
    2.1526,
    2.8652,
    1.5579,
    1.6382,
    1.1253,
    2.8251,
    1.9160,
)


def _stats(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wan21 mean and std as [1, 16, 1, 1, 1] tensors on `like`'s device and dtype."""
    mean = torch.tensor(WAN21_MEAN, device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(WAN21_STD, device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    return mean, std


def frames_to_model_space(frames: torch.Tensor) -> torch.Tensor:
    """[B, F, H, W, 3] RGB in [0, 1] (H, W even) -> z [B, 16, F, H/2, W/2], what the model sees as clean data."""
    b, f, h, w, _ = frames.shape
    x = frames.permute(0, 1, 4, 2, 3).reshape(b * f, 3, h, w) * 2 - 1
    x = F.pixel_unshuffle(x, 2)  # [B*F, 12, H/2, W/2]
    x = torch.cat([x, x.new_zeros(b * f, LATENT_CHANNELS - RGB_CHANNELS, h // 2, w // 2)], dim=1)
    return x.reshape(b, f, LATENT_CHANNELS, h // 2, w // 2).transpose(1, 2)


def model_space_to_frames(z: torch.Tensor) -> torch.Tensor:
    """z [B, 16, F, h, w] -> [B, F, 2h, 2w, 3] RGB clamped to [0, 1]; the 4 spare channels are ignored."""
    b, _, f, h, w = z.shape
    x = z[:, :RGB_CHANNELS].transpose(1, 2).reshape(b * f, RGB_CHANNELS, h, w)
    x = F.pixel_shuffle(x.float(), 2)  # [B*F, 3, 2h, 2w]
    x = ((x + 1) / 2).clamp(0, 1)
    return x.reshape(b, f, 3, 2 * h, 2 * w).permute(0, 1, 3, 4, 2)


def process_out(z: torch.Tensor) -> torch.Tensor:
    """Model space -> ComfyUI LATENT space (Wan21 `process_out`): z * std + mean. Shapes [B, 16, F, h, w]."""
    mean, std = _stats(z)
    return z * std + mean


def process_in(latent: torch.Tensor) -> torch.Tensor:
    """ComfyUI LATENT space -> model space (Wan21 `process_in`): (latent - mean) / std."""
    mean, std = _stats(latent)
    return (latent - mean) / std


def encode(frames: torch.Tensor) -> torch.Tensor:
    """[B, F, H, W, 3] in [0, 1] -> a ComfyUI LATENT tensor [B, 16, F, H/2, W/2] (e.g. for a video-to-video run)."""
    return process_out(frames_to_model_space(frames))


def decode(latent: torch.Tensor) -> torch.Tensor:
    """A ComfyUI LATENT tensor (e.g. KSampler's output) [B, 16, F, h, w] -> frames [B, F, 2h, 2w, 3] in [0, 1]."""
    return model_space_to_frames(process_in(latent.float()))


def empty_latent_node_values(frames: int, size: int) -> dict:
    """Values for ComfyUI's stock `EmptyHunyuanLatentVideo` node giving a [1, 16, frames, size/2, size/2] latent.

    That node makes [B, 16, (length - 1) // 4 + 1, height // 8, width // 8] (Wan/Hunyuan VAE compression),
    so `size`-pixel testbed frames need width = height = 4 * size and length = 4 * frames - 3.
    """
    return {"width": 4 * size, "height": 4 * size, "length": 4 * frames - 3, "batch_size": 1}
