"""Explainers shipped with explbench; importing this package registers them."""
