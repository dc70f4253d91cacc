"""A report of one frame as content (image with contours, measurements, findings, ACR TI-RADS,
model), free of Qt; ``thyroid_studio/report_pdf.py`` lays it out as a PDF.

Imports the root, io, findings, models and inference.
"""
