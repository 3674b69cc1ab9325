"""The Dask cluster a region runs on: an embedded `LocalCluster`, or an existing scheduler.

Local workers are processes (one model each, no shared GIL), each running one block at a time
with `threads_per_worker` torch threads; their number comes from the cores and the memory a
worker needs. A worker that dies (killed, out of memory) has its block rescheduled by Dask's
scheduler up to `allowed-failures` times; that setting is the scheduler's, so on an existing
cluster it is whatever `dask scheduler` was started with (default 3). The reason a block then
fails tells a worker Dask's nanny killed for its memory from one that died otherwise (the
scheduler's events say which). A client that loses its scheduler cancels every block still
running (`scheduler_lost`); the run stops there and its rerun resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.errors import Cancelled, EngineError, InvalidInput, RegionError
from engine.progress import Reporter
from engine.region.settings import ClusterSettings

_MEMORY = "worker-restart-memory"  # the nanny's event when it kills a worker for its memory
WORKER_MEMORY_BYTES = 2_500_000_000  # one worker: the model on a 1280 px tile, plus headroom
CONNECT_TIMEOUT_S = 20


@dataclass(frozen=True)
class LocalSize:
    """How the local cluster is cut: processes and torch threads in each."""

    workers: int
    threads_per_worker: int


def local_size(
    settings: ClusterSettings, cores: int | None = None, memory_bytes: int | None = None
) -> LocalSize:
    """Workers and threads from the options, else from the cores: two torch threads per worker
    (one model in memory per two cores; whether 2 x 1 beats 1 x 2 is for bench_region.py on an
    unloaded machine), as many workers as the cores and the memory allow."""
    cores = cores or os.cpu_count() or 1
    threads = settings.threads_per_worker or (2 if cores >= 2 else 1)
    if settings.workers:
        return LocalSize(settings.workers, threads)
    by_cores = max(1, cores // threads)
    if memory_bytes is None:
        import psutil

        memory_bytes = psutil.virtual_memory().total
    by_memory = max(1, int(memory_bytes * 0.8) // WORKER_MEMORY_BYTES)
    return LocalSize(min(by_cores, by_memory), threads)


@contextlib.contextmanager
def open_client(settings: ClusterSettings, reporter: Reporter) -> Iterator[Any]:
    """A `distributed.Client` on the cluster the settings name; closed (and the local cluster
    with its worker processes shut down) on the way out."""
    import dask

    config = {
        "distributed.scheduler.allowed-failures": settings.retries,
        # a worker holds only the block it maps: one that dies takes no queued block with it
        "distributed.scheduler.worker-saturation": 1.0,
    }
    chatty = logging.getLogger("distributed")  # its INFO lines: the Reporter says what matters
    level = chatty.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        chatty.setLevel(logging.WARNING)
    try:
        with dask.config.set(config):
            yield from _clients(settings, reporter)
    finally:
        chatty.setLevel(level)


def _clients(settings: ClusterSettings, reporter: Reporter) -> Iterator[Any]:
    """The client (one), on the scheduler named or on a new local cluster."""
    from distributed import Client, LocalCluster

    if settings.scheduler:
        try:
            client = Client(settings.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise InvalidInput(
                f"cannot reach the Dask scheduler at {settings.scheduler} ({exc}); start it "
                "with `dask scheduler` and check the address"
            ) from None
        except ValueError as exc:  # an address distributed cannot parse (ClusterSettings checks)
            raise InvalidInput(
                f"--scheduler {settings.scheduler!r} is not a Dask scheduler address ({exc}): "
                "give tcp://HOST:PORT, as `dask scheduler` prints it"
            ) from None
        quiet = logging.getLogger("distributed.client")
        level = quiet.level
        try:
            with client:
                reporter.log(
                    f"Dask scheduler {settings.scheduler}, dashboard {client.dashboard_link}"
                )
                try:
                    yield client
                except EngineError:
                    if client.status != "running":  # lost: closing cuts its reconnection short,
                        quiet.setLevel(logging.CRITICAL)  # which Dask logs with a traceback
                    raise
        finally:
            quiet.setLevel(level)
        return
    size = local_size(settings)
    try:
        cluster = LocalCluster(
            n_workers=size.workers,
            threads_per_worker=1,  # one block at a time per process; torch takes the cores
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port (the scheduler serves one anyway)
            silence_logs=logging.ERROR,
        )
    except (RuntimeError, OSError, TimeoutError) as exc:
        raise RegionError(
            f"the local Dask workers did not start ({exc}); run the command as a script or "
            "`python -m engine`, not from standard input, and check the memory left"
        ) from None
    with cluster, Client(cluster) as client:
        dashboard = (
            client.dashboard_link
            if _has_dashboard()
            else "not available (its package, bokeh, is not installed)"
        )
        reporter.log(
            f"Dask local cluster: {size.workers} worker process(es) x "
            f"{size.threads_per_worker} torch thread(s), scheduler {cluster.scheduler_address}, "
            f"dashboard {dashboard}"
        )
        try:
            yield client
        except (Cancelled, KeyboardInterrupt, EngineError):  # a cancel, or a run stopped
            _kill_workers(cluster)  # a block in a forward pass would hold a graceful close
            raise


def _kill_workers(cluster: Any) -> None:
    """Stop a local cluster's worker processes at once (cancel): each nanny is told not to
    restart its worker, then the worker is killed. The blocks they were mapping never reach
    the manifest, and their temporaries are swept by the next run."""
    import psutil

    for nanny in list(cluster.workers.values()):
        nanny.close_gracefully(reason="flair-region-cancelled")
        try:
            if nanny.pid:
                psutil.Process(nanny.pid).kill()
        except psutil.Error:
            continue


def workers_alive(client: Any) -> int:
    """Workers the scheduler knows now (0, at once, while the client has no scheduler)."""
    if client.status != "running":
        return 0
    try:
        return len(client.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError):
        return 0


def scheduler_lost(future: Any) -> bool:
    """Whether a block's future was cancelled because its client lost the scheduler (Dask
    then cancels every future it holds: their blocks' fate is unknown here)."""
    from distributed.client import FutureCancelledError

    if not future.cancelled():
        return False
    try:
        future.result(timeout=1)
    except FutureCancelledError as exc:
        return exc.reason == "scheduler-connection-lost"
    except TimeoutError:
        return False
    return False


def death_reason(client: Any, exc: BaseException) -> str:
    """Why a block failed whose workers all died mapping it (Dask's `KilledWorker`): the
    deaths Dask's nanny caused for memory are told apart, from the scheduler's events."""
    key = getattr(exc, "task", None)
    try:
        lost = [
            msg.get("worker")
            for _, msg in client.get_events("all")
            if msg.get("action") == "remove-worker" and key in msg.get("processing-tasks", ())
        ]
        memory = {msg.get("worker"): msg.get("rss", 0) for _, msg in client.get_events(_MEMORY)}
    except (OSError, TimeoutError, AttributeError, TypeError):
        lost, memory = [], {}
    killed = [w for w in lost if w in memory]
    if not killed:
        return (
            "the workers mapping it died each time (killed or out of memory; lower "
            f"--tile-size or give workers more memory): {exc}"
        )
    peak = max(memory[w] for w in killed) / 1e9
    return (
        f"the workers mapping it died each time, out of memory: Dask killed {len(killed)} of "
        f"the {len(lost)} for going over their memory limit (at {peak:.2f} GB); lower "
        "--tile-size or --batch-size, run fewer workers per machine or give them more memory"
    )


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True
