"""Training and fine-tuning: the Trainer loop and its FinetuneTrainer, cached frame sets,
augmentation, losses, run folders and the evaluation shared with ``evaluate``.

Imports every wing below it (root, io, nets, findings, models, inference, datasets).
"""
