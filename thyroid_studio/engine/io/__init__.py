"""Frames in and files out: readers for images, DICOM and video (and their headers, read before
any pixel is decoded), DICOM SEG written and read (dicom_seg.py), the scale burnt into a frame's pixels (its ruler),
atomic file writing,
project-relative paths.

Imports only the engine's root modules.
"""
