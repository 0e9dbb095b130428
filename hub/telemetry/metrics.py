"""Prometheus metrics of every worker process in one scrape.

`mash-hub serve --workers N` runs N processes behind one port, and a scrape reaches
whichever worker accepts it. Each worker's own registry would answer for that worker alone:
counters would jump between workers' totals (read by `rate()` as resets) and the
sequencer's gauge would read 1 or 0 by chance. So `serve` gives the workers a shared folder
(prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, which the library reads
when it is imported): counters and histograms are summed over every worker that ever ran,
and gauges declared `multiprocess_mode="livemax"` (all of the hub's: the alert rules take
their max) are the max over the workers alive now. A worker killed outright leaves its gauge
file behind; each scrape forgets the files of processes that are gone, so a dead
sequencer's 1 does not hide that no one sequences. One process (the default) keeps its
in-memory registry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable
GAUGE_MODE: Final = "livemax"  # how a gauge of several workers is read: the max over live ones


def exposition() -> bytes:
    """The scrape's body: this process's registry, or every worker's in multiprocess mode."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return generate_latest()
    forget_dead(Path(folder))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def forget_dead(folder: Path) -> None:
    """Drop the live-gauge files of processes that no longer run."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _running(pid):
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def shared_by_workers() -> Iterator[Path]:
    """A fresh metrics folder named in this process's environment, which the workers it
    spawns inherit (before they import prometheus_client); removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="mash-hub-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
