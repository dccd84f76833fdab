"""Evaluation: metrics, threshold suggestions, ground-truth checks and batch inspection."""
