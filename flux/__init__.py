"""flux: the reproducibility pipeline for FluxViT (arXiv 2503.14237)."""

__version__ = "0.1.0"
