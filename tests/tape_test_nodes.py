"""Test-only ComfyUI nodes (never shipped in nodes/): stand-ins for the text and CLIP vision encoder LOADERS of the
official Wan, HunyuanVideo and LTX-Video workflows, which the tests run on CPU with tiny random weights.

The encoders cannot be tiny: ComfyUI builds umt5-xxl (5.7B parameters), t5xxl (4.8B), llava-llama3 (8B) + CLIP-L and
ViT-H (632M) from fixed configs whatever the checkpoint holds. So the tests swap CLIPLoader -> TAPETestCLIPLoader,
DualCLIPLoader -> TAPETestDualCLIPLoader and CLIPVisionLoader -> TAPETestCLIPVisionLoader (same widgets, same output
types); CLIPTextEncode and CLIPVisionEncode run as shipped on the objects these return, and everything after them
(diffusion model, LoRA, ModelSamplingSD3, FluxGuidance, LTXVConditioning, TAPE, guiders, samplers, VAE, save) is
ComfyUI's own code.

The server of tests/workflow_server.py loads this file from its custom_nodes folder.
"""

import zlib

import torch

UMT5_TOKENS, UMT5_DIM = 512, 4096  # what Wan's umt5-xxl encoder gives ComfyUI: [1, 512, 4096], padding zeroed
T5_TOKENS = 128  # LTX-Video's t5xxl: padded to at least 128 tokens, with an attention mask over the padding
CLIP_L_POOLED = 768  # HunyuanVideo: llava-llama3 hidden states [1, T, 4096] unpadded (T = the prompt's tokens)
VIT_H_DIM, VIT_H_PATCH, VIT_H_SIZE, VIT_H_PROJ = 1280, 14, 224, 1024  # clip_vision_h: 257 tokens of 1280


def _seeded(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class TinyWanTextEncoder:
    """Duck-types comfy.sd.CLIP for CLIPTextEncode: one fixed random vector per word (by its crc32), zero padding up
    to umt5's 512 tokens, like the real encoder's output shape and padding. kind "ltxv": t5xxl as ComfyUI's LTXV
    tokenizer gives it, padded to at least 128 tokens, with the attention mask; kind "hunyuan_video": unpadded
    llama hidden states plus CLIP-L's pooled vector."""

    def __init__(self, kind: str = "wan"):
        self.kind = kind

    def tokenize(self, text, return_word_ids=False, **kwargs):
        return {"words": text.split()[: UMT5_TOKENS - 1]}

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict=None, show_pbar=True):
        words = tokens["words"] + ["</s>"]
        n = {"wan": UMT5_TOKENS, "ltxv": max(T5_TOKENS, len(words)), "hunyuan_video": len(words)}[self.kind]
        cond = torch.zeros(1, n, UMT5_DIM)
        for i, word in enumerate(words):
            cond[0, i] = 0.2 * _seeded(zlib.crc32(word.encode()), UMT5_DIM)
        extra = dict(add_dict or {})
        if self.kind == "ltxv":
            mask = torch.zeros(1, n, dtype=torch.long)
            mask[:, : len(words)] = 1
            extra["attention_mask"] = mask
        elif self.kind == "hunyuan_video":
            extra["pooled_output"] = 0.2 * _seeded(zlib.crc32(" ".join(words).encode()), 1, CLIP_L_POOLED)
        return [[cond, extra]]

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
        cond = self.encode_from_tokens_scheduled(tokens)[0][0]
        if return_dict:
            return {"cond": cond, "pooled_output": None}
        return (cond, None) if return_pooled else cond


class TinyClipVision:
    """Duck-types comfy.clip_vision.ClipVisionModel for CLIPVisionEncode: ComfyUI's own CLIP preprocessing (resize,
    crop, normalise to 224x224), then only a fixed random ViT-H/14 patch embedding (no transformer layers):
    a class token + 16x16 patch tokens of 1280 features, as clip_vision_h's penultimate hidden states are."""

    def __init__(self):
        self.patch = 0.05 * _seeded(1, VIT_H_DIM, 3, VIT_H_PATCH, VIT_H_PATCH)
        self.cls = _seeded(2, 1, 1, VIT_H_DIM)
        self.proj = _seeded(3, VIT_H_DIM, VIT_H_PROJ) / VIT_H_DIM**0.5

    def encode_image(self, image, crop=True):
        from comfy.clip_vision import Output, clip_preprocess

        mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
        pixels = clip_preprocess(image, size=VIT_H_SIZE, mean=mean, std=std, crop=crop).float()
        tokens = torch.nn.functional.conv2d(pixels, self.patch, stride=VIT_H_PATCH).flatten(2).transpose(1, 2)
        hidden = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        out = Output()
        out["last_hidden_state"] = hidden
        out["penultimate_hidden_states"] = hidden
        out["image_embeds"] = hidden[:, 0] @ self.proj
        out["mm_projected"] = None
        return out


class TAPETestCLIPLoader:
    """Same widgets as CLIPLoader (clip_name, type, device); the name is kept but nothing is loaded."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": ("STRING", {}), "type": ("STRING", {}), "device": ("STRING", {})}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "TAPE/tests"

    def load(self, clip_name, type, device):
        if type not in ("wan", "ltxv"):
            raise ValueError(f"TAPETestCLIPLoader stands in for Wan's umt5 and LTX-Video's t5xxl only, got {type!r}")
        return (TinyWanTextEncoder(type),)


class TAPETestDualCLIPLoader:
    """Same widgets as DualCLIPLoader (clip_name1, clip_name2, type, device): HunyuanVideo's CLIP-L + llava-llama3."""

    @classmethod
    def INPUT_TYPES(cls):
        names = ("clip_name1", "clip_name2", "type", "device")
        return {"required": {k: ("STRING", {}) for k in names}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "TAPE/tests"

    def load(self, clip_name1, clip_name2, type, device):
        if type != "hunyuan_video":
            raise ValueError(f"TAPETestDualCLIPLoader stands in for HunyuanVideo's encoders only, got {type!r}")
        return (TinyWanTextEncoder(type),)


class TAPETestCLIPVisionLoader:
    """Same widget as CLIPVisionLoader (clip_name)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": ("STRING", {})}}

    RETURN_TYPES = ("CLIP_VISION",)
    FUNCTION = "load"
    CATEGORY = "TAPE/tests"

    def load(self, clip_name):
        return (TinyClipVision(),)


# The loaders each stands in for, for the tests' workflow patching.
STAND_INS = {
    "CLIPLoader": "TAPETestCLIPLoader",
    "DualCLIPLoader": "TAPETestDualCLIPLoader",
    "CLIPVisionLoader": "TAPETestCLIPVisionLoader",
}

NODE_CLASS_MAPPINGS = {
    "TAPETestCLIPLoader": TAPETestCLIPLoader,
    "TAPETestDualCLIPLoader": TAPETestDualCLIPLoader,
    "TAPETestCLIPVisionLoader": TAPETestCLIPVisionLoader,
}
