"""Datasets on disk: reading TN3K/TG3K/image+mask layouts, the one crash-safe writer with its
record index, check and repair, statistics, and exam-grouped splits and folds.

Imports the root, io and findings.
"""
