"""Paper tables (LaTeX) and figures, rendered from metric files and manifests; never by running a model."""
