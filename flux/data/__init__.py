"""Data layer: registry, downloads, annotation parsers, synthetic data, indexing, sampling, decoding."""
