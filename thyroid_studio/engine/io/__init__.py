"""Frames in and files out: readers for images, DICOM and video (and their headers, read before
any pixel is decoded), atomic file writing, where outputs may go (outputs: the one rule every
writer plans by), the CSV tables the project writes and reads (tables), project-relative paths.

Imports only the engine's root modules.
"""
