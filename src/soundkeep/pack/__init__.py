"""Packaging: bundles, torrents, manifests, releases."""
