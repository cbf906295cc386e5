"""Transfer learning: fine-tune a learned representation on labelled data."""

from .finetune import FineTuner, FineTunerRegressor

__all__ = ["FineTuner", "FineTunerRegressor"]
