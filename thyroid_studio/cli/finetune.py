"""`thyroid-studio finetune`: placeholder replaced below."""
