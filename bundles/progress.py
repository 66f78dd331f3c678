"""Progress of long work: click's bar on a terminal when asked, else a log line every ~10%."""
from __future__ import annotations

import contextlib
import logging

log = logging.getLogger("gapline")


class _LogBar:
    """``update(n)`` logs ``label: done/total unit`` about ten times over the run."""

    def __init__(self, label, length, unit):
        self.label, self.length, self.unit = label, max(int(length), 0), unit
        self.done = 0
        self._step = max(1, self.length // 10)
        self._next = self._step

    def update(self, n=1):
        self.done += n
        if self.done >= self._next or self.done == self.length:
            log.info("%s: %d/%d %s", self.label, self.done, self.length, self.unit)
            while self._next <= self.done:
                self._next += self._step


@contextlib.contextmanager
def progress_bar(label: str, length: int, show: bool, unit: str = ""):
    """A context yielding an object with ``update(n)``: a click bar when ``show``, else log lines."""
    if show:
        import click

        with click.progressbar(length=length, label=label, show_pos=True) as bar:
            yield bar
        return
    yield _LogBar(label, length, unit)


def track(items, label: str, show: bool, unit: str = ""):
    """Iterate ``items`` while showing progress (see :func:`progress_bar`)."""
    items = list(items)
    with progress_bar(label, len(items), show, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
