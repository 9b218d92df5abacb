"""Data sets shipped with vecx (see README.md here for provenance and licence)."""
