"""The exchange's spool of file reads (bourse/exchange_spool.py): durable, summed, taken over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bourse.exchange_spool import CURRENT, ReadSpool, batch_id, summed


def _read(grant: int, query: int, size: int) -> dict[str, object]:
    return {
        "grant_id": grant, "product": "p", "version": "1.0.0", "market": "CN",
        "buyer": "KL Mart", "query": query, "size": size,
    }  # fmt: skip


def test_reads_are_summed_per_grant_and_query_and_a_torn_line_skipped(tmp_path: Path) -> None:
    spool = ReadSpool(tmp_path / "reads")
    for grant, query, size in [(1, 7, 10), (1, 7, 5), (1, 8, 3), (2, 7, 100)]:
        spool.note(_read(grant, query, size))
    with (spool.folder / CURRENT).open("a") as f:
        f.write('{"grant_id": 1, "query": 7, "si')  # a crash in the middle of a line
    batch = spool.take()
    assert batch is not None and spool.take() is None  # the next reads go to a new file
    sums = {(r.grant_id, r.query): (r.files, r.size, r.batch) for r in summed(batch)}
    assert sums == {
        (1, 7): (2, 15, batch_id(batch)),
        (1, 8): (1, 3, batch_id(batch)),
        (2, 7): (1, 100, batch_id(batch)),
    }
    assert spool.batches() == [batch]
    spool.done(batch)
    assert spool.batches() == []
    spool.close()
    assert not spool.folder.exists()


def test_a_dead_services_reads_are_taken_over_and_a_live_ones_are_not(tmp_path: Path) -> None:
    root = tmp_path / "reads"
    script = (
        "import sys; from pathlib import Path; from bourse.exchange_spool import ReadSpool\n"
        "s = ReadSpool(Path(sys.argv[1]))\n"
        "s.note({'grant_id': 3, 'product': 'p', 'version': 'v', 'market': 'MY',"
        " 'buyer': 'b', 'query': 1, 'size': 42})\n"
        "print(s.folder)\n"
    )  # noted, then the process ends without taking or closing: as if killed
    dead = Path(
        subprocess.run(
            [sys.executable, "-c", script, str(root)], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    live = ReadSpool(root)
    live.note(_read(1, 1, 1))
    other = ReadSpool(root)  # another live service: neither takes the other's folder
    with other.orphans() as batches:
        assert [r.grant_id for b in batches for r in summed(b)] == [3]
        assert all(b.parent == dead for b in batches)
        kept = batches
    assert dead.exists()  # nothing was audited: the batch is kept, with its folder
    with other.orphans() as again:
        assert [b.name for b in again] == [b.name for b in kept]
        for b in again:
            b.unlink()
    assert not dead.exists()  # audited (deleted): the folder goes
    assert live.folder.exists() and json.loads((live.folder / CURRENT).read_text())["size"] == 1
    live.close()
    other.close()
