"""The ground floor: shared vocabulary and plumbing that every other layer may use.

Nothing here imports any other part of alertlib: paths, atomic file writes, provenance (code
version, machine, seeding), the numba switch, and the study's vocabulary.
"""
