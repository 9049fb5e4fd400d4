"""Run a campaign's shards as Dask tasks: a LocalCluster on loopback, or a cluster that already runs.

The work is the process pool's, moved onto Dask: one task per pending shard, running the same
``runner._run_shard`` with the same per-worker state (sent once per worker by a WorkerPlugin,
which Dask also applies to a worker that replaces a dead one). The worker writes the shard file
atomically, so a shard exists whole or not at all, and resume is unchanged. A worker killed
mid-shard loses nothing: Dask reschedules its task on another worker, which recomputes the
shard from its scenarios (shards depend on nothing else), so the results equal an
uninterrupted run byte for byte.

``dask-local``: a LocalCluster of worker processes (one thread each) listening on 127.0.0.1 only,
no dashboard; its workers exit with the campaign (``fkhls.campaign.lifecycle``) and the cluster
is closed when the campaign ends, however it ends. ``tcp://HOST:PORT`` (or ``tls://``): an
existing scheduler (e.g. one that dask-jobqueue started on a site's batch system); its workers
must import the same fkhls and see the results directory on a shared filesystem.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import replace
from typing import Callable, Iterator

from fkhls.core.errors import FkhlsError

__all__ = ["LOCAL_POOL", "DASK_LOCAL", "check_scheduler", "dask_executor"]

LOCAL_POOL = "local-pool"
DASK_LOCAL = "dask-local"
_ADDRESS = re.compile(r"^(tcp|tls)://[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")

# Worker-side campaign states, by campaign token (a worker of a long-lived cluster may serve several campaigns).
_STATES: dict = {}


def check_scheduler(scheduler: str) -> str:
    """``scheduler`` if it is ``local-pool``, ``dask-local`` or a scheduler address; else a clear error."""
    if scheduler in (LOCAL_POOL, DASK_LOCAL) or _ADDRESS.match(scheduler or ""):
        return scheduler
    raise FkhlsError(f"scheduler {scheduler!r} is not valid; valid: '{LOCAL_POOL}', '{DASK_LOCAL}' or a Dask "
                     "scheduler address tcp://HOST:PORT (or tls://HOST:PORT)")


def _plugin_class():
    """The WorkerPlugin type, made on first use so that importing this module does not import distributed."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class CampaignPlugin(WorkerPlugin):
        """Puts the campaign's state into each worker once (and into any worker that joins later)."""

        def __init__(self, state, token: str, campaign_pid: int | None):
            self.name = f"fkhls-campaign-{token}"
            self.state, self.token, self.campaign_pid = state, token, campaign_pid

        # This class is made in a function, so cloudpickle sends it by value with a copy of the globals it
        # names: the state goes into the installed module's table through module-level functions.
        def setup(self, worker) -> None:  # noqa: ARG002 (Dask's signature)
            from fkhls.campaign.dask_engine import _install_state

            _install_state(self.token, self.state, self.campaign_pid)

        def teardown(self, worker) -> None:  # noqa: ARG002
            from fkhls.campaign.dask_engine import _drop_state

            _drop_state(self.token)

    return CampaignPlugin


def _install_state(token: str, state, campaign_pid: int | None) -> None:
    """Worker side: keep the campaign state; in our own LocalCluster, exit with the campaign (even after kill -9)."""
    if campaign_pid is not None:
        from fkhls.campaign.lifecycle import install

        install(campaign_pid)
    _STATES[token] = state


def _drop_state(token: str) -> None:
    _STATES.pop(token, None)


def _dask_shard(task, token: str) -> tuple:
    """The task: compute and write the shard of ``task`` (a ``runner.ShardTask``) with this worker's campaign state."""
    from fkhls.campaign.runner import _run_shard

    state = _STATES.get(token)
    if state is None:
        raise FkhlsError(f"Dask worker {os.getpid()} has no state for campaign {token} (plugin not applied)")
    return _run_shard(task, state)


def task_key(token: str, task) -> str:
    """The Dask key of a shard task: campaign token and shard index."""
    return f"{token}-{task.index:05d}"


def _token(state) -> str:
    """Names this campaign's plugin and tasks on the cluster (results do not depend on it)."""
    return hashlib.sha256(f"{state.shard_dir}\0{os.getpid()}\0{id(state)}".encode()).hexdigest()[:16]


def dask_executor(scheduler: str) -> Callable[..., Iterator[tuple]]:
    """An executor with the signature of ``runner._execute``: (state, tasks, n_tasks, workers) -> shard results.

    Tasks are submitted a few per worker ahead (``runner.AHEAD``), so the scheduler never holds the whole
    campaign's scenarios; a task lost with a killed worker is rerun by Dask from the copy it keeps."""
    check_scheduler(scheduler)

    def execute(state, tasks, n_tasks: int, workers: int) -> Iterator[tuple]:
        if not n_tasks:
            return
        from itertools import islice

        from fkhls.campaign.runner import AHEAD
        from distributed import Client, LocalCluster, as_completed

        cluster = client = None
        token = _token(state)
        # Dask logs every connection at INFO; a campaign shows its own progress (and errors) instead.
        dask_log = logging.getLogger("distributed")
        level = dask_log.level
        dask_log.setLevel(logging.WARNING)
        try:
            if scheduler == DASK_LOCAL:
                cluster = LocalCluster(n_workers=max(1, min(workers, n_tasks)), threads_per_worker=1,
                                       processes=True, host="127.0.0.1", dashboard_address=None,
                                       memory_limit=0,  # shards bound a worker's memory; never pause or kill it
                                       silence_logs=logging.ERROR)
                client = Client(cluster)
                campaign_pid = os.getpid()
            else:
                try:
                    client = Client(scheduler, timeout="30s")
                except (OSError, TimeoutError) as exc:
                    raise FkhlsError(f"Dask scheduler {scheduler!r} cannot be reached: {exc}") from exc
                campaign_pid = None  # the site's workers are not ours to stop
            plugin = _plugin_class()(replace(state, manifest=None), token, campaign_pid)
            client.register_plugin(plugin)
            tasks = iter(tasks)
            ahead = AHEAD * max(1, workers if cluster is not None else len(client.scheduler_info()["workers"]))

            live = set()  # submitted, not yet finished

            def submit(batch):
                new = [client.submit(_dask_shard, task, token=token, key=f"fkhls-shard-{task_key(token, task)}",
                                     pure=False) for task in batch]
                live.update(new)
                return new

            futures = as_completed(submit(islice(tasks, ahead)))
            try:
                for future in futures:
                    result = future.result()
                    live.discard(future)
                    for new in submit(islice(tasks, 1)):
                        futures.add(new)
                    future.release()
                    yield result
            finally:
                futures.clear()
                client.cancel(list(live))  # on an error or Ctrl-C: drop queued shards; finished files stay
                if cluster is None:
                    try:
                        client.unregister_worker_plugin(plugin.name)
                    except Exception:  # noqa: BLE001 (the scheduler may be gone already)
                        pass
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            dask_log.setLevel(level)

    return execute
