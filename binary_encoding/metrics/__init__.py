"""Metrics of the latent space and of the classifier (definitions: docs/method.md §6-§8)."""
