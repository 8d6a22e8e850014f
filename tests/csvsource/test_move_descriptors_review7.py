"""A move into archive_folder / error_folder that fails must not leave a descriptor open (review chg7b).

``LocalFolder._into`` held a duplicate of the source folder's descriptor and, on any error but "is a link"
(a folder it may not create, a read-only or full disk, a name too long), raised with it still open. A move that
keeps failing is tried on every full sync, so a daemon leaked one descriptor per kept file and sync until EMFILE.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.csv.local import LocalFolder


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")


@pytest.mark.parametrize("folder", ["x" * 300, "archive/" + "y" * 300])  # ENAMETOOLONG, at the first or second part
def test_failed_moves_leave_no_descriptor_open(tmp_path: Path, folder: str) -> None:
    (tmp_path / "orders_1.csv").write_text("order_number\n1\n")
    files = LocalFolder(tmp_path)
    before = _open_fds()
    for _ in range(20):
        with pytest.raises(OSError):
            files.move("orders_1.csv", folder)
    assert _open_fds() == before  # before: one more per failed move
    assert (tmp_path / "orders_1.csv").exists()


def test_a_file_where_a_folder_should_be_leaves_no_descriptor_open(tmp_path: Path) -> None:
    """The one failure that closed it before (no folder there), kept so: EACCES on a folder owned by the ERP's
    upload user takes the path of ENAMETOOLONG above (these tests run as root, whom no mode refuses)."""
    (tmp_path / "orders_1.csv").write_text("order_number\n1\n")
    (tmp_path / "archive").write_text("a file, not a folder\n")
    files = LocalFolder(tmp_path)
    before = _open_fds()
    for _ in range(5):
        with pytest.raises(Exception, match="not a folder"):
            files.move("orders_1.csv", "archive/2026")
    assert _open_fds() == before
