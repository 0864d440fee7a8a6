"""Tools around the engine: the update-time model (estimate), pulse statistics (endurance),
device-model fitting (fit) and golden-reference comparison (verify)."""
