"""Thyroid Studio: thyroid nodule segmentation in ultrasound frames (research use, not diagnosis)."""
__version__ = "0.1.0"
