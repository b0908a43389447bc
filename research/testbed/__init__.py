"""Training and evaluation of the testbed model; the model itself ships in the top-level `testbed/` (the demo
checkpoints, `model`, `latent`, `vocab`). Modules:

- `data`: the on-the-fly clip generator (photos from scikit-image, pans, zooms, moving objects).
- `train`: the training script; `shards`: its checkpoint shards; `plot_loss`: the loss curve.
- `sample`: sampling through ComfyUI's sampler and the docs grid; `motion`: block-matching motion of samples.
- `fidelity`: the pruned-vs-unpruned fidelity benchmark (run by research/fidelity/fidelity.py).

The shipped modules are re-exported here, so this package's modules import them as `from . import latent, vocab`
both ways it is loaded: as part of the pack (`comfyui_tape.research.testbed`, the tests) and from the repository
root (`python3 -m research.testbed.train ...`, where `testbed` is a top-level package).
"""

try:
    from ...testbed import latent, model, vocab
except ImportError:  # `research` is the top-level package: python -m research.testbed.<tool> from the repo root
    from testbed import latent, model, vocab

__all__ = ["latent", "model", "vocab"]
