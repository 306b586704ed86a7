"""What can be loaded: the catalog, pipeline loading and residency, LoRA adapters, tiny test checkpoints."""
