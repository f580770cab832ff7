"""Learning a detector: datasets, identity-disjoint splits, the crop cache, self-blended fakes,
augmentation, metrics, the training loop and evaluation.
"""
