"""Running models on frames: the Segmenter, LiteMedSAM box prompts and refinement, the batch loops
behind ``segment`` and ``prompt``, overlays and contour uncertainty.

Imports the root, io, nets, findings and models.
"""
