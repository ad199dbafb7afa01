"""`svpo annotate --ray ADDRESS|local`: one run's trees grown by Ray actors (docs/ray.md).

The driver (the process running ``annotate_run``) reads the questions, owns the run
folder and writes every tree with the single-process writer, so the append/fsync/resume rules
are the same. Each worker is a Ray actor that loads the policy once (``annotate_run``'s loader,
on its GPU or the CPU) and grows whole trees with ``pipelines.annotate.annotate_trees``: a tree's
prefixes stay in one engine's cache, and every expansion is seeded by (seed, question, tree
index, node) (method.md section 3), so a tree does not depend on which worker grew it.

Work goes out in small batches as workers free up (guided self-scheduling: a batch is the
queue's share over twice the live workers, at most ``--trees-in-flight`` trees), and each batch's
trees come back to the driver as one result. A worker that dies (killed process, lost node)
loses only its batch in flight, which goes back to the queue; the run fails, naming the last
error, only when no worker is left. A killed driver takes its actors with it (Ray ends the
actors of a dead job); the same command resumes from the run folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from svpo_harness.core.fault import fault_env, fault_point
from svpo_harness.pipelines.annotate.annotate import PairRule, annotate_trees
from svpo_harness.pipelines.annotate.annotate_data import AnnotationQuestion

NAMESPACE = "svpo-annotate"  # actors are named svpo-annotate/<run id>-<i> (`ray list actors`)
START_TIMEOUT_S = 900.0  # no worker ready by then: the cluster cannot place one
LOCAL_OBJECT_STORE = 256 * 1024**2  # results are a few MB a batch; `local` keeps RAM for models
WorkItem = tuple[AnnotationQuestion, int]  # (question, tree index): one tree


def import_ray() -> Any:
    from svpo_harness.pipelines.annotate.annotate_config import AnnotateError

    try:
        import ray
    except ImportError:
        raise AnnotateError(
            "--ray needs Ray, which is not installed: pip install 'svpo-harness[ray]'"
        ) from None
    return ray


class AnnotateWorker:
    """One Ray actor: the policy (loaded once) and the grader; grows batches of whole trees."""

    def __init__(self, cfg: Any, cpu_threads: int | None) -> None:
        from svpo_harness.pipelines.annotate.annotate_config import grader, load_policy

        if cpu_threads:  # a CPU worker uses the cores Ray gave it, no more
            import torch

            torch.set_num_threads(cpu_threads)
        self.cfg = cfg
        self.policy = load_policy(cfg)
        self.grade = grader(cfg.grade_timeout)
        self.grade([("1", "1")])  # start the grading pool now, not inside the first batch
        self.grown = 0  # trees grown by this process (the ray-worker fault point counts them)

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "node": socket.gethostname(),
            "tokenizer_fingerprint": self.policy.tokenizer_fingerprint,
            "cpu_s": time.process_time(),  # this process's CPU so far (benchmarks)
        }

    def grow(self, opts: Any, items: list[WorkItem]) -> list[tuple[Any, list[Any], dict]]:
        """The trees of ``items`` as (tree record, its pair records, counters)."""
        cfg = self.cfg
        questions = list({q.question_id: q for q, _ in items}.values())
        per_question = max(index for _, index in items) + 1
        wanted = {(q.question_id, index) for q, index in items}
        done = {(q.question_id, i) for q in questions for i in range(per_question)} - wanted
        out: list[tuple[Any, list[Any], dict]] = []

        def keep(record: Any, records: list[Any], counters: dict) -> None:
            out.append((record, records, counters))
            self.grown += 1
            fault_point("ray-worker", self.grown)  # SVPO_FAULT_EXIT_AT=ray-worker:N (tests)

        annotate_trees(
            questions,
            self.policy,
            opts,
            seed=cfg.seed,
            grade=self.grade,
            trees_per_question=per_question,
            done=done,
            trees_in_flight=cfg.trees_in_flight,
            batch_rows=cfg.batch_size,
            pair_rule=PairRule(cfg.rule, cfg.min_q_gap, cfg.min_visits),
            on_tree=keep,
        )
        return out


def work_items(
    questions: Sequence[AnnotationQuestion], trees_per_question: int, done: set | frozenset
) -> list[WorkItem]:
    """Every (question, tree index) not yet written, in the single-process order."""
    return [
        (q, index)
        for q in questions
        for index in range(trees_per_question)
        if (q.question_id, index) not in done
    ]


def batch_size(queued: int, live_workers: int, most: int) -> int:
    """Trees in the next batch: the queue's share over twice the live workers (big batches
    early, single trees at the end, so no worker idles on a long tail), at most ``most``."""
    share = math.ceil(queued / (2 * max(1, live_workers)))
    return min(queued, max(1, min(most, share)))


def connect(address: str, workers: int | None) -> bool:
    """Join the cluster at ``address`` (``local``: start one here); True when this call started
    Ray (so the caller shuts it down). An already connected process keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        _init(ray, address, workers)
    except (ConnectionError, RuntimeError, ValueError) as err:  # wrong address, no token...
        from svpo_harness.pipelines.annotate.annotate_config import AnnotateError

        raise AnnotateError(f"--ray {address}: cannot join the cluster: {_one_line(err)}") from None
    return True


def _init(ray: Any, address: str, workers: int | None) -> None:
    common: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False}
    if address == "local":  # room for every asked worker, even past the core count
        cpus = max(os.cpu_count() or 1, workers or 1)
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE,
            **common,
        )
    else:
        _check_reachable(address)
        ray.init(address=address, **common)


def _check_reachable(address: str) -> None:
    """A host:port nobody listens on: say so now (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # `auto`, ray://... : Ray's own resolution
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise ConnectionError(f"nothing answers at {address} ({err.strerror or err})") from None


def plan_workers(
    resources: dict[str, float], workers: int | None, gpus: float | None
) -> tuple[int, float]:
    """(workers, GPUs each): by default one worker per GPU when the cluster has GPUs, else one
    single-thread worker per CPU."""
    from svpo_harness.pipelines.annotate.annotate_config import AnnotateError

    total_gpus = resources.get("GPU", 0.0)
    gpus = (1.0 if total_gpus else 0.0) if gpus is None else gpus
    if gpus < 0 or (workers is not None and workers < 1):
        raise AnnotateError("--workers must be >= 1 and --gpus-per-worker >= 0")
    if workers is None:
        workers = int(total_gpus // gpus) if gpus else int(resources.get("CPU", 1))
        if workers < 1:
            raise AnnotateError(f"the Ray cluster has {total_gpus:g} GPUs: none for a worker")
    return workers, gpus


class RayWorkers:
    """The actors of one run and the hand-out loop; use :meth:`start`, then :meth:`grow`."""

    def __init__(self, cfg: Any, owns_ray: bool) -> None:
        ray = import_ray()
        self.ray, self.cfg, self.owns_ray = ray, cfg, owns_ray
        self.count, self.gpus = plan_workers(
            ray.cluster_resources(), cfg.workers, cfg.gpus_per_worker
        )
        if not self.gpus and cfg.device == "auto":  # a CPU worker, even on a GPU node
            cfg = self.cfg = dataclasses.replace(cfg, device="cpu")
        cls = ray.remote(AnnotateWorker)
        run_id = uuid.uuid4().hex[:8]
        faults = fault_env()  # actors do not inherit the driver's environment
        extra = {"runtime_env": {"env_vars": faults}} if faults else {}
        self.actors = [
            cls.options(
                name=f"{run_id}-{i}", num_cpus=1, num_gpus=self.gpus, max_restarts=0, **extra
            ).remote(cfg, None if self.gpus else 1)
            for i in range(self.count)
        ]
        self.starting = {a.info.remote(): a for a in self.actors}
        self.ready: list[Any] = []
        self.info: dict[Any, dict[str, Any]] = {}
        self.last_error = ""
        self.tokenizer_fingerprint = ""

    @classmethod
    def start(cls, cfg: Any) -> RayWorkers:
        """Connect, start the actors, wait for the first to load its policy (its tokenizer
        fingerprint goes into the run folder's manifest)."""
        owns = connect(cfg.ray, cfg.workers)
        try:
            pool = cls(cfg, owns)
        except BaseException:
            if owns:
                import_ray().shutdown()
            raise
        deadline = time.monotonic() + START_TIMEOUT_S
        while not pool.ready:
            if not pool.starting:
                pool.close()
                raise pool.no_worker_left()
            if time.monotonic() > deadline:
                free = pool.ray.available_resources()
                pool.close()
                raise pool.error(
                    f"no Ray worker started in {START_TIMEOUT_S:.0f} s ({pool.count} asked, "
                    f"{pool.gpus:g} GPUs and 1 CPU each; free: {_resources(free)})"
                )
            pool._wait_starting(timeout=5.0)
        return pool

    def wait_started(self) -> None:
        """Until every worker has loaded its policy or died (benchmarks time the run after)."""
        while self.starting:
            self._wait_starting(timeout=5.0)

    # -- events --------------------------------------------------------------------------------
    def error(self, message: str) -> Exception:
        from svpo_harness.pipelines.annotate.annotate_config import AnnotateError

        return AnnotateError(f"--ray {self.cfg.ray}: {message}")

    def no_worker_left(self) -> Exception:
        return self.error(f"no worker left of {self.count}; last error: {self.last_error}")

    def _lost(self, actor: Any, err: Exception) -> None:
        """A dead or unreachable worker: drop it for good (its work is re-queued by the caller)."""
        self.last_error = _one_line(err)
        node = self.info.get(actor, {}).get("node")
        which = f"a Ray worker on {node} was lost" if node else "a starting Ray worker was lost"
        print(f"annotate: {which}: {self.last_error}", file=sys.stderr)
        self.ray.kill(actor, no_restart=True)
        if actor in self.ready:
            self.ready.remove(actor)

    def _wait_starting(self, timeout: float) -> None:
        done, _ = self.ray.wait(list(self.starting), num_returns=1, timeout=timeout)
        for ref in done:
            self._started(ref, self.starting.pop(ref))

    def _started(self, ref: Any, actor: Any) -> None:
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayError as err:  # its policy did not load
            self._lost(actor, err)
            return
        if not self.tokenizer_fingerprint:
            self.tokenizer_fingerprint = info["tokenizer_fingerprint"]
        elif info["tokenizer_fingerprint"] != self.tokenizer_fingerprint:
            self.close()
            raise self.error(
                f"the worker on {info['node']} loaded {self.cfg.model} with another tokenizer "
                "than the first worker (every node needs the same model files)"
            )
        self.info[actor] = info
        self.ready.append(actor)

    # -- the run -------------------------------------------------------------------------------
    def grow(
        self,
        items: list[WorkItem],
        opts: Any,
        on_tree: Callable[[Any, list[Any], dict[str, Any]], None],
        *,
        close: bool = True,
    ) -> None:
        """Grow every item's tree on the workers; ``on_tree`` (the run's writer) gets each tree
        once, in order of arrival. Closes the workers at the end (on an error always)."""
        ray = self.ray
        queue: deque[WorkItem] = deque(items)
        written: set[tuple[str, int]] = set()
        busy: dict[Any, tuple[Any, list[WorkItem]]] = {}  # result ref -> (actor, its batch)
        try:
            while queue or busy:
                working = {actor for actor, _ in busy.values()}
                for actor in [a for a in self.ready if a not in working]:
                    if not queue:
                        break
                    batch = self._next_batch(queue)
                    busy[actor.grow.remote(opts, batch)] = (actor, batch)
                if not busy and not self.starting:
                    raise self.no_worker_left()
                waiting = list(busy) + list(self.starting)
                done, _ = ray.wait(waiting, num_returns=1)
                for ref in done:
                    if ref in self.starting:
                        self._started(ref, self.starting.pop(ref))
                        continue
                    actor, batch = busy.pop(ref)
                    try:
                        trees = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:  # our code failed: not a loss
                        raise self.error(f"a worker failed: {_one_line(err)}") from None
                    except ray.exceptions.RayError as err:  # the process or node is gone
                        self._lost(actor, err)
                        queue.extendleft(reversed(batch))
                        continue
                    for record, records, counters in trees:
                        key = (record.question_id, record.tree_index)
                        if key not in written:  # a tree is written once, whatever happened
                            written.add(key)
                            on_tree(record, records, counters)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()

    def _next_batch(self, queue: deque[WorkItem]) -> list[WorkItem]:
        size = batch_size(
            len(queue), len(self.ready) + len(self.starting), self.cfg.trees_in_flight
        )
        return [queue.popleft() for _ in range(size)]

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors, self.ready, self.starting = [], [], {}
        if self.owns_ray:
            self.ray.shutdown()
            self.owns_ray = False


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _resources(res: dict[str, float]) -> str:
    keys = [k for k in ("CPU", "GPU", "memory") if k in res]
    return ", ".join(f"{k} {res[k]:g}" for k in keys) or "nothing"
