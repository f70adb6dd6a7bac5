"""`kill -9` of `unify serve --workers 2` in the middle of a signed webhook load: every delivery unify acknowledged is
stored, and exactly once. The CI-sized form of bench/chaos.py (same machinery, 600 deliveries)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # bench/ is not a package: its modules import each other by bare name

import chaos  # noqa: E402


def test_every_acknowledged_webhook_is_stored_once_across_a_kill_9(database_url: str, tmp_path: Path) -> None:
    config = chaos.Config(deliveries=600, kill_after="0.4", down=0.5, senders=16, client_processes=2, give_up=60)
    report = chaos.run(config, dsn=database_url, workdir=tmp_path)

    assert report["killed"], report
    assert report["missing"] == 0, report["missing_keys"]
    assert report["duplicated"] == 0, report["duplicated_keys"]
    assert report["acknowledged"] == 600, report  # every delivery got through in the end, none rejected
    assert report["foreign_interactions"] == 0
    assert report["stored"] == 600
    assert min(int(n) for n in report["raw_rows"]) >= 1  # each acknowledged delivery's raw body was kept
    assert chaos.passed(report)
