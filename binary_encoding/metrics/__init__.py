"""Metrics of the latent space and of the classifier (see SPEC.md section 3)."""
