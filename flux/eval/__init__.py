"""Evaluation protocols: metrics computed from model features and predictions."""
