"""Training of small dLLMs and their autoregressive twin on synthetic tasks (CPU, minutes)."""
from __future__ import annotations

from .recipes import RECIPES, Recipe
from .tasks import TASKS, Example, TaskConfig, exact_match, examples
from .trainer import TrainReport, train_tiny

__all__ = [
    "RECIPES", "Recipe", "TASKS", "Example", "TaskConfig", "exact_match", "examples",
    "TrainReport", "train_tiny",
]
