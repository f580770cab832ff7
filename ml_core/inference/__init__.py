"""Verdicts for one video: the predictor and its Grad-CAM explanations."""
