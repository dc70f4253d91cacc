"""What a radiologist says about a nodule: the findings fields and labels.csv, the nodule's shape
from its mask, the ACR TI-RADS chart, and how well predicted findings score.

Imports the root, io and nets (the findings heads' class vocabulary).
"""
