"""Sample-quality metrics: Inception Score, FID, KL divergence."""
from .classifier import (ConvClassifier, evaluate, extract_features, load_classifier,  # noqa: F401
                         predict_logits, save_classifier, train_classifier)
