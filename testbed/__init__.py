"""The TAPE testbed: a small video model with ComfyUI's own Wan 2.1 architecture, trained on synthetic clips.

No Wan weights can be downloaded where this project is built, and random weights have no meaningful attention,
so pruning fidelity is measured on this model instead. Modules:

- `vocab`: the prompt vocabulary and its fixed text embeddings (the model's "text encoder").
- `latent`: the fixed invertible frames <-> latent map (the model's "VAE").
- `data`: the on-the-fly clip generator (photos from scikit-image, pans, zooms, moving objects).
- `model`: the WanModel config and its initialisation.
- `train`: the training script; `sample`: sampling through ComfyUI's sampler and the docs grid.

Nothing here imports ComfyUI at module level except `train` and `sample`, which need it anyway.
"""
