"""`mestream` jobs that belong to the trainer (they import torch inside run())."""
