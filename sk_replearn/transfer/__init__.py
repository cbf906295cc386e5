"""Transfer learning: fine-tune a learned representation on labelled data."""

from .finetune import FineTuner, FineTunerRegressor
from .pretrained import PretrainedTransformer

__all__ = ["FineTuner", "FineTunerRegressor", "PretrainedTransformer"]
