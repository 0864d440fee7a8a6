"""The simulation engine, one layer over the next: devices -> pulses -> tile -> algorithms -> nn.

Nothing here imports the CLI, the experiments or the output code; configs come in as
validated dataclasses from :mod:`analogtrain.config`.
"""
