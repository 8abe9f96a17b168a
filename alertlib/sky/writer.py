"""A release in the BTS layout written in chunks, straight into its final files.

A release of the real one's size (about 409k alerts) holds some 20 GB of float32 triplets, more
than a machine's memory; :class:`ReleaseWriter` writes each split's ``{split}_triplets_<version>.npy``
through a memory map of the final file (``numpy.lib.format.open_memmap``) and appends to its
``{split}_cand_<version>.csv`` chunk by chunk, so only one chunk is ever in memory. The files are
those :func:`alertlib.io.release.write_split` writes for the whole arrays at once (same names,
shapes, row order and CSV text), and :func:`alertlib.io.release.read_split` reads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.vocab import STAMP_SIZE
from alertlib.sky.simulate import DTYPES


class ReleaseWriter:
    """Each split's triplets and candidate rows, written at their places as chunks arrive.

    ``rows`` maps each split to the sorted indices (into the whole simulated sky) of its alerts, as
    :func:`alertlib.sky.alerts.split_by_source` gives them; chunks arrive in the sky's order.
    """

    def __init__(self, folder: str | Path, version: str, rows: dict[str, np.ndarray], dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
        folder = Path(folder)
        self.rows = {split: np.asarray(index, dtype=np.int64) for split, index in rows.items()}
        shape = (STAMP_SIZE, STAMP_SIZE, 3)
        self.triplets, self.tables, self.header = {}, {}, {}
        for split, index in self.rows.items():
            # The names of alertlib.io.release.read_split.
            path = folder / f"{split}_triplets_{version}.npy"
            if index.size:
                self.triplets[split] = np.lib.format.open_memmap(
                    path, mode="w+", dtype=dtype, shape=(index.size, *shape)
                )
            else:  # a memory map cannot be empty
                np.save(path, np.zeros((0, *shape), dtype=dtype))
            self.tables[split] = open(folder / f"{split}_cand_{version}.csv", "w", newline="")  # noqa: SIM115
            self.header[split] = True
        self.first = 0  # the sky's index of the next chunk's first alert

    def write(self, triplets: np.ndarray, candidates: pd.DataFrame) -> None:
        """The next chunk of the sky: its triplets (n, 63, 63, 3) and candidate rows, in the sky's order."""
        end = self.first + len(candidates)
        for split, index in self.rows.items():
            # The split's alerts in this chunk: consecutive places in the split, since both are in the sky's order.
            start, stop = np.searchsorted(index, [self.first, end])
            if start == stop:
                continue
            local = index[start:stop] - self.first
            self.triplets[split][start:stop] = triplets[local]
            candidates.iloc[local].to_csv(self.tables[split], header=self.header[split], index=False)
            self.header[split] = False
        self.first = end

    def close(self, columns) -> None:
        """Flush the triplets; give a split that received no rows its CSV header (``columns``)."""
        for split, table in self.tables.items():
            if self.header[split]:
                pd.DataFrame(columns=list(columns)).to_csv(table, index=False)
            table.close()
        for triplets in self.triplets.values():
            triplets.flush()
        self.triplets.clear()
