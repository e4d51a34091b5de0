"""Readers for open data formats, each yielding Arrow batches for the catalog ingest."""
