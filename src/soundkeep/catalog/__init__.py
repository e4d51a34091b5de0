"""The catalog stage: every known recording, its releases and artists, with provenance."""
