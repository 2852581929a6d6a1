"""`mestream` jobs that belong to engines (heavy imports inside run())."""
