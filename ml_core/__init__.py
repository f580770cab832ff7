"""Plain-Python deepfake detection core: video sampling, faces, model, inference, training.

Nothing in this package imports Django; the web app and the worker call into it.
"""
