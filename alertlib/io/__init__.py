"""Data in and out: the BTS release layout, alert packets and their fast decoders, ingest, per-cutout
preprocessing, galaxy catalogs and the Galaxy Zoo decision trees (schemas as data)."""
