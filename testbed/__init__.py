"""The TAPE testbed: a small video model with ComfyUI's own Wan 2.1 architecture, trained on synthetic clips.

No Wan weights can be downloaded where this project is built, and random weights have no meaningful attention,
so pruning fidelity is measured on this model instead. It ships with the pack as the demo model: the two
checkpoints, and the modules the demo nodes need:

- `vocab`: the prompt vocabulary and its fixed text embeddings (the model's "text encoder").
- `latent`: the fixed invertible frames <-> latent map (the model's "VAE").
- `model`: the WanModel config, its initialisation and checkpoint conversions.

Training, sampling scripts and the fidelity benchmark are research tooling: research/testbed/.
"""
