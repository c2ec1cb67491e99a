"""Per-sensor encoder nodes: each turns one sensor stream into SensorFeature messages."""
