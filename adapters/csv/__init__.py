"""The ``csv`` source: order and fulfillment exports in a local or SFTP folder."""

from adapters.csv.adapter import CsvAdapter
from adapters.csv.config import CsvConfig

__all__ = ["CsvAdapter", "CsvConfig"]
