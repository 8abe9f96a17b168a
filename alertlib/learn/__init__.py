"""Learning: models and weights, datasets and augmentations, losses, training, pre-training,
fine-tuning, metrics, the run bookkeeping, and inference."""
