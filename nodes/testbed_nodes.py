"""ComfyUI nodes for the TAPE testbed model: a vocabulary prompt -> CONDITIONING, and LATENT -> IMAGE frames.

Graph: UNETLoader (TAPE_demo_toy_model_8blocks.safetensors) -> ModelSamplingSD3 (shift 3) -> KSampler, with
"TAPE Testbed Prompt" as positive (and an empty one as negative), EmptyHunyuanLatentVideo
(width 256, height 256, length 61 -> 16 frames of 64x64) as latent, and "TAPE Testbed Decode" after it.
"""

from comfy_api.latest import io

from ..testbed import latent, vocab


class TapeTestbedPrompt(io.ComfyNode):
    """Encodes a testbed prompt with the fixed word embeddings (the testbed has no text encoder model)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPETestbedPrompt",
            display_name="TAPE Testbed Prompt",
            category="TAPE/testbed",
            description="Text prompt for the TAPE testbed video model, built from its small fixed vocabulary.\n"
            + vocab.vocabulary_help(),
            inputs=[
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="cat moving right fast on brick, camera pan-left",
                    tooltip="Words from the testbed vocabulary in any order: one scene (brick, grass, gravel, "
                    "coffee, space, moon), optionally an object (cat, astronaut, rocket, coin, photographer) "
                    "with a motion (left, right, up, down, still) and speed (slow, fast), and a camera "
                    "(static, pan-left, pan-right, pan-up, pan-down, zoom-in, zoom-out). Leave empty for the "
                    "negative / unconditional prompt.",
                ),
            ],
            outputs=[io.Conditioning.Output(tooltip="Conditioning for KSampler with the testbed model.")],
        )

    @classmethod
    def execute(cls, prompt: str) -> io.NodeOutput:
        try:
            context = vocab.encode(prompt)  # [1, TEXT_LEN, 4096]
        except vocab.UnknownWordsError as err:
            raise ValueError(str(err)) from None
        return io.NodeOutput([[context, {}]])


class TapeTestbedDecode(io.ComfyNode):
    """Turns a testbed LATENT into RGB frames with the fixed pixel-shuffle map (the testbed's 'VAE')."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TAPETestbedDecode",
            display_name="TAPE Testbed Decode",
            category="TAPE/testbed",
            description="Decodes a TAPE testbed latent [B, 16, F, h, w] into B*F RGB frames of 2h x 2w pixels.",
            inputs=[
                io.Latent.Input(
                    "samples",
                    tooltip="The KSampler output of the testbed model (a Wan 2.1 latent: 16 channels, one "
                    "latent frame per video frame).",
                ),
            ],
            outputs=[io.Image.Output(tooltip="All frames of all batch items, in order (B*F images).")],
        )

    @classmethod
    def execute(cls, samples: dict) -> io.NodeOutput:
        lat = samples["samples"]
        if lat.ndim != 5 or lat.shape[1] != latent.LATENT_CHANNELS:
            raise ValueError(f"TAPE Testbed Decode expects a [B, 16, F, h, w] video latent, got {list(lat.shape)}")
        frames = latent.decode(lat)  # [B, F, H, W, 3]
        return io.NodeOutput(frames.reshape(-1, *frames.shape[2:]))


TESTBED_NODES = [TapeTestbedPrompt, TapeTestbedDecode]
