"""The engine: frames, networks, inference, training, metrics and datasets. No Qt below here."""
