"""The capacity dataset's rows (bench/harness/pgdataset.py) are what the server itself would write."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from filesapi.ids import file_id_timestamp_us, is_file_id

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from harness import pgdataset

END_US = 1_800_000_000_000_000


def test_rows_have_server_ids_in_time_order_and_the_planned_shape() -> None:
    shape = pgdataset.Shape(20_000, workspaces=50)
    rows = list(pgdataset.rows(shape, END_US))
    ids = [r[0] for r in rows]
    assert all(is_file_id(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # id order is creation order
    assert all(file_id_timestamp_us(r[0]) == r[6] for r in rows)  # created_at is read back from the id
    assert END_US - pgdataset.DAY_US * 366 < rows[0][6] < rows[-1][6] <= END_US
    by_workspace = Counter(r[1] for r in rows)
    assert by_workspace[pgdataset.workspace_id(0)] / len(rows) > 0.45  # the big one holds half
    assert len(by_workspace) == 50
    expired = [r for r in rows if r[9] is not None and r[9] < END_US]
    assert len(expired) == len(rows) // 100  # 1% expired (in the past at any later run)
    assert all(r[9] <= END_US - 60_000_000 for r in expired)
    assert sum(r[8] is not None for r in rows) == len(rows) // 10  # 10% scoped
    assert dict(zip(pgdataset._COLUMNS, rows[0], strict=True))["stored_inline"] is False
