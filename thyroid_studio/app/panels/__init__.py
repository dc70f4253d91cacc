"""Dockable panels beside the canvas: one file per panel."""
