"""Fidelity scripts on the testbed models (BENCHMARKS.md, "Fidelity"): run as files from the repository root,
e.g. `python3 research/fidelity/fidelity.py --gpu --out results/fidelity.json`."""
