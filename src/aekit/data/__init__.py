"""Data for aekit: named benchmark sets, arrays, tables and image folders, and writing arrays back.

``load("mnist")`` or ``load("path/to/data.csv")`` gives a ``Dataset``; ``read_array``/``write_array``
move single arrays between files and NumPy. Every expected failure is a ``DataError``.
"""

from aekit.data.datasets import DATASETS, DatasetSpec, cache_dir, data_dir, load
from aekit.data.files import Dataset, read_array, write_array

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "cache_dir", "data_dir", "load", "read_array", "write_array"]
