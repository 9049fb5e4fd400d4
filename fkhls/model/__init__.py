"""What a QKeras model computes: its exact fixed-point spec, layer by layer."""
