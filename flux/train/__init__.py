"""Training: one loop (trainer.py) with pluggable objectives (objectives.py), runs resolved from config."""
