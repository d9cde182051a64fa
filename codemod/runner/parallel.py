"""Many files: in one process, or in N processes taking files from a list they share, with the
results handed back in discovery order whatever the number of jobs."""

from __future__ import annotations

import gc
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..model import Config
from .one_file import FileResult, FileTask, Settings, process_file


@dataclass
class Summary:
    files: list[FileResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def scanned(self) -> int:
        return len(self.files)

    @property
    def changed(self) -> int:
        """Files changed (or, without writing, that would change); a file that could not be written
        is counted among the errors instead."""
        return sum(1 for f in self.files if f.changed and not f.error)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.skipped]

    @property
    def sites_converted(self) -> int:
        return sum(f.sites_converted for f in self.files)

    def findings_by_severity(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.files:
            for finding in f.findings:
                counts[finding.severity] += 1
        return counts




class Interrupted(Exception):
    """Ctrl-C: the files in progress were finished, nothing else was started."""

    def __init__(self, done: list[FileResult], total: int):
        super().__init__(f"interrupted after {len(done)} of {total} files")
        self.done = done
        self.total = total


# Below these (files found, and their bytes), workers cost more than they save: a worker process
# takes a few hundredths of a second to load the engine.
MIN_PARALLEL_FILES = 4
MIN_PARALLEL_BYTES = 512 * 1024

_worker_state: tuple[Settings, Config] | None = None


def _work(task: FileTask) -> FileResult:
    """What a worker does with one file (a test may put something else here)."""
    assert _worker_state is not None
    settings, config = _worker_state
    return process_file(task, settings, config)


def _worker(number: int, order: list[FileTask], settings: Settings, shared: "_Shared", results) -> None:
    """A worker process: takes the largest file not yet taken until none is left, and sends the
    parent each result, then None."""
    global _worker_state
    # Ctrl-C reaches the whole process group: the parent decides what stops, and a worker finishes
    # the file it is writing rather than dying in the middle of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_state = (settings, settings.config())  # the rules, loaded (or inherited) once
    from .. import passes  # noqa: F401  (the engine loads them on first use: do it now)

    gc.freeze()  # what every file shares (the rules, the modules) is never scanned again
    while (i := shared.take(front=True, worker=number)) is not None:
        results.send((i, _work(order[i])))
    results.send(None)
    results.close()


class _Shared:
    """The files not yet taken are order[front..back], largest first: workers take from the front,
    the parent from the back, so that all finish together. ``holding[w]`` is the file worker w is
    on (-1: none), so that a worker that dies costs only that file. In shared memory, under one
    lock: handing out a file needs no message and no thread of the parent."""

    def __init__(self, context, files: int, workers: int):
        self.bounds = context.Array("i", [0, files - 1])  # front, back; a lock comes with it
        self.holding = context.Array("i", [-1] * workers, lock=False)

    def take(self, front: bool, worker: int = -1) -> int | None:
        with self.bounds.get_lock():
            first, last = self.bounds[0], self.bounds[1]
            if worker >= 0:
                self.holding[worker] = -1
            if first > last:
                return None
            if front:
                self.bounds[0] = first + 1
                if worker >= 0:
                    self.holding[worker] = first
                return first
            self.bounds[1] = last - 1
            return last

    def stop(self) -> None:
        """Hand out nothing more (Ctrl-C): the files being processed are finished."""
        with self.bounds.get_lock():
            self.bounds[1] = self.bounds[0] - 1


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run(tasks: Sequence[FileTask], settings: Settings, *, jobs: int,
        on_result: Callable[[FileResult], None], on_progress: Callable[[int], None] | None = None) -> list[FileResult]:
    """Process every task; ``on_result`` gets the results in task order (so the output is the same
    whatever ``jobs`` is), ``on_progress`` the number of files done so far. Raises Interrupted."""
    config = settings.config()
    ordered = _InOrder(len(tasks), on_result, on_progress)
    try:
        if jobs <= 1:
            for task in tasks:
                ordered.add(task.index, process_file(task, settings, config))
        else:
            _run_in_parallel(tasks, settings, config, jobs, ordered)
    except KeyboardInterrupt:
        raise Interrupted(ordered.flush_done(), len(tasks)) from None
    return ordered.results()


def _run_in_parallel(tasks, settings: Settings, config: Config, jobs: int, ordered: "_InOrder") -> None:
    """``jobs`` processes at work: the parent and ``jobs - 1`` workers, the workers taking the
    largest files first and the parent the smallest, so that all finish together and no process
    competes with more busy ones than there are cores. Sizes come from discovery: no file is read
    twice to plan the run."""
    if len(tasks) < MIN_PARALLEL_FILES or sum(t.size for t in tasks) < MIN_PARALLEL_BYTES:
        for task in tasks:
            ordered.add(task.index, process_file(task, settings, config))
        return
    import multiprocessing
    from multiprocessing.connection import wait

    # fork (Linux): a worker starts in milliseconds, with the rules and modules the parent loaded.
    # Elsewhere the platform's default; the worker loads the rules then.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    order = sorted(tasks, key=lambda t: (-t.size, t.index))
    shared = _Shared(context, len(order), jobs - 1)
    workers, pipes = _start_workers(context, order, settings, shared, jobs - 1)
    received: set[int] = set()

    def receive(block: bool) -> None:
        """Hand on the results that have arrived; with ``block``, wait until every worker is done.
        A worker that died (its pipe ends without its last None) costs the file it held."""
        while pipes:
            ready = wait(list(pipes), timeout=None if block else 0)
            if not ready:
                return
            for pipe in ready:
                try:
                    message = pipe.recv()
                except EOFError:
                    held = shared.holding[pipes.pop(pipe)]
                    if held >= 0 and held not in received:
                        received.add(held)
                        ordered.add(order[held].index, FileResult(
                            order[held].display,
                            error="the worker process died (killed, or out of memory?): left untouched"))
                    continue
                if message is None:
                    del pipes[pipe]
                    continue
                i, result = message
                received.add(i)
                ordered.add(order[i].index, result)

    try:
        while (i := shared.take(front=False)) is not None:
            ordered.add(order[i].index, process_file(order[i], settings, config))
            receive(block=False)
        receive(block=True)
    except BaseException:
        # Ctrl-C: files not started are dropped; the workers finish (and write) the ones they hold.
        shared.stop()
        try:
            receive(block=True)
        except Exception:  # noqa: BLE001  (a message the interruption cut short: that file is not reported)
            pass
        raise
    finally:
        for process in workers:
            process.join()


def _start_workers(context, order, settings: Settings, shared: "_Shared", count: int):
    """The worker processes, and the pipe each sends its results on (pipe -> worker number)."""
    workers, pipes = [], {}
    for number in range(count):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(number, order, settings, shared, writer), daemon=True)
        process.start()
        # Only the worker holds the writing end now: its pipe ends when it does, even if it dies,
        # and a worker started later does not inherit it.
        writer.close()
        workers.append(process)
        pipes[reader] = number
    return workers, pipes


class _InOrder:
    """Results arrive in any order; hand them on in task order."""

    def __init__(self, total: int, on_result, on_progress):
        self.slots: list[FileResult | None] = [None] * total
        self.next = 0
        self.done = 0
        self.on_result = on_result
        self.on_progress = on_progress

    def add(self, index: int, result: FileResult) -> None:
        if self.slots[index] is not None:
            return
        self.slots[index] = result
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done)
        while self.next < len(self.slots) and self.slots[self.next] is not None:
            self.on_result(self.slots[self.next])
            self.next += 1

    def flush_done(self) -> list[FileResult]:
        """After an interruption: every finished file, in order (gaps are files not processed)."""
        for i in range(self.next, len(self.slots)):
            if self.slots[i] is not None:
                self.on_result(self.slots[i])
        return [r for r in self.slots if r is not None]

    def results(self) -> list[FileResult]:
        return [r for r in self.slots if r is not None]
