"""Trained models as files and as choices: the architecture table, checkpoints and prompt-model
files (schema-checked before anything is built), contour roles, the model library and model cards.

Imports the root, io, nets and findings.
"""
