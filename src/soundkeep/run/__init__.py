"""Executors that run the same task functions on local cores or a Ray cluster."""
