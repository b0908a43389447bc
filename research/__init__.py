"""Research tooling, not shipped to users: GPU benchmarks (`bench`), fidelity measurements (`fidelity`) and the
testbed model's training and evaluation (`testbed`). See research/README.md; run from the repository root."""
