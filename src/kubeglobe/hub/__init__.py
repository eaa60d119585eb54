"""The global side: controllers of platform resources, one module per concept."""
