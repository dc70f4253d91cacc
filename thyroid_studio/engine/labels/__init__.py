"""The user's labels: one frame's LabelModel with its own undo history, painting on masks, and the
Worklist of opened frames (the document the app's views render and edit through), with the scales
the user set for files and folders.

Imports every wing below it except training.
"""
