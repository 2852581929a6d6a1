"""Datasets, the model families, leave-one-subject-out training and export (needs the [train] extra)."""
