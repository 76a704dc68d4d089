"""Test-wide settings."""
from __future__ import annotations

import torch

# NOTE: the test models are tiny; with OpenMP's default threads every op pays thread
# start-up and, on a busy 2-core machine, runs 10-50x slower than on one thread.
torch.set_num_threads(1)
