"""Models: FluxViT and InternVideo2 vision towers, token selectors, text encoders, checkpoints, FLOPs."""
