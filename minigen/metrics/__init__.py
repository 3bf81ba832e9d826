"""Sample-quality metrics: Inception Score, FID, KL divergence."""
