"""Frames in and files out: readers for images, DICOM and video (and their headers, read before
any pixel is decoded), DICOM SEG written and read (dicom_seg.py), the scale burnt into a frame's
pixels (ruler), atomic file writing, where outputs may go (outputs: the one rule every writer plans by),
the CSV tables the project writes and reads (tables), memory per pixel (memory), project-relative paths.

Imports only the engine's root modules.
"""
