"""The engine: everything Thyroid Studio does, with no Qt below here.

Wings, lowest first; a wing imports only the root modules and the wings before it
(``tests/test_architecture.py`` holds this): the root (geometry, metrics, progress,
preprocessing, calibration), io, pacs, nets, findings, models, inference, datasets, training, reports, labels.
"""
