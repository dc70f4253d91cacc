"""Frames in and files out: readers for images, DICOM and video (and their headers, read before
any pixel is decoded), atomic file writing, project-relative paths.

Imports only the engine's root modules.
"""
