"""A Gymnasium vector environment whose workers exchange actions and step results through shmfusion rings.

:class:`ShmVectorEnv` runs the sub-environments in worker processes, like Gymnasium's ``AsyncVectorEnv``, but
groups them: at most ``num_workers`` processes (by default one fewer than the CPUs, at least one), each stepping
its contiguous share of the sub-environments in turn. Instead of pickling commands and results through pipes,
every worker has two SPSC rings, each in its own System V segment: a command batch (step with one action per
sub-environment, or reset with their seeds) goes one way, a result batch (observation, reward, termination and
truncation flags per sub-environment) comes back the other, each a fixed-layout record copied once into the
trainer's preallocated batch array. So a vector step costs one wake-up per worker and direction, not one per
sub-environment, and by default no more processes (workers and trainer) than CPUs. Waits sleep on a futex after a short bounded spin
(the core's blocking waits), the GIL released. Infos travel through a pipe, and only when a sub-environment
returns a non-empty info dict.

Semantics are those of Gymnasium's vector environments with ``autoreset_mode=NEXT_STEP`` (the default): the step
after an episode ended resets that sub-environment and returns its first observation, reward 0 and both flags
false. ``reset(seed=s)`` seeds sub-environment ``i`` with ``s + i``.

Failures: an exception in a worker is re-raised in the trainer as :class:`WorkerError` with the worker's
traceback, and a worker that dies (SIGKILL, segfault) raises :class:`WorkerError` within ``liveness_poll``
seconds; in both cases the environment is closed first: every worker is stopped and joined, and the rings'
segments, created removed-on-last-detach, are gone once the last process detaches (no segment is ever left,
even if the trainer itself is killed: its workers see it gone and exit).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _native

try:
    import gymnasium as gym
    from gymnasium.vector import VectorEnv
    from gymnasium.vector.utils import CloudpickleWrapper, batch_space
    from gymnasium.vector.vector_env import AutoresetMode
except ImportError as e:  # pragma: no cover - gymnasium is an optional dependency
    raise ImportError("shmfusion.vector needs gymnasium: pip install gymnasium") from e

__all__ = ["ShmVectorEnv", "WorkerError"]

_STEP, _RESET, _CLOSE = 1, 2, 3
_OK, _INFO, _ERROR = 0, 1, 2


class WorkerError(RuntimeError):
    """A worker raised an exception or died; the vector environment has been closed."""

    def __init__(self, message: str, index: int, worker: int = -1):
        super().__init__(message)
        #: The index of the failing sub-environment (for a worker that died: the first one it ran).
        self.index = index
        #: The index of the failing worker process.
        self.worker = worker


def _array_space(space: gym.Space, what: str) -> tuple[np.dtype, tuple[int, ...]]:
    shape, dtype = getattr(space, "shape", None), getattr(space, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"ShmVectorEnv supports array {what} spaces (Box, Discrete, MultiDiscrete, MultiBinary), "
                        f"not {space}")
    return np.dtype(dtype), tuple(shape)


def _layouts(obs_space: gym.Space, act_space: gym.Space) -> tuple[np.dtype, np.dtype]:
    """The per-sub-environment command and result records; a ring element is a worker's run of them."""
    obs_dtype, obs_shape = _array_space(obs_space, "observation")
    act_dtype, act_shape = _array_space(act_space, "action")
    command = np.dtype([("command", "u4"), ("has_seed", "u4"), ("seed", "i8"), ("action", act_dtype, act_shape)],
                       align=True)
    result = np.dtype([("reward", "f8"), ("terminated", "?"), ("truncated", "?"), ("status", "u1"),
                       ("obs", obs_dtype, obs_shape)], align=True)
    return command, result


def _open_ring(record: np.dtype, per_worker: int, ring_id: int) -> _native.SpscRing:
    return _native.SpscRing.open("block", 2, element_size=record.itemsize * per_worker,
                                 element_align=min(record.alignment, 8), id=ring_id)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _worker(env_fns: CloudpickleWrapper, per_worker: int, command_id: int, result_id: int,
            command_dtype: np.dtype, result_dtype: np.dtype, pipe) -> None:
    """Steps the sub-environments of one group in turn, one command batch and one result batch at a time."""
    # The trainer handles Ctrl-C and tells the workers to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    consumer = _open_ring(command_dtype, per_worker, command_id).consumer()
    producer = _open_ring(result_dtype, per_worker, result_id).producer()
    cmd = np.zeros(per_worker, command_dtype)
    res = np.zeros(per_worker, result_dtype)
    cmd_bytes, res_bytes = cmd.view(np.uint8), res.view(np.uint8)
    # Field views made once: indexing a structured array by name on every step costs more than the step.
    kinds, seed_flags, seeds, actions = cmd["command"], cmd["has_seed"], cmd["seed"], cmd["action"]
    observations, rewards, status = res["obs"], res["reward"], res["status"]
    terminations, truncations = res["terminated"], res["truncated"]
    envs: list = []
    try:
        envs = [fn() for fn in env_fns.fn]
        autoreset = [False] * len(envs)
        while True:
            try:
                consumer.pop(cmd_bytes, None)
            except (_native.WriterGoneError, _native.ClosedError):
                return  # the trainer is gone
            command = int(kinds[0])
            if command == _CLOSE:
                return
            options = pipe.recv() if command == _RESET and seed_flags[0] & 2 else None
            infos = []
            status[:] = _OK
            for j, env in enumerate(envs):
                try:
                    if command == _RESET:
                        obs, info = env.reset(seed=int(seeds[j]) if seed_flags[j] & 1 else None, options=options)
                        reward, terminated, truncated = 0.0, False, False
                    elif autoreset[j]:
                        obs, info = env.reset()
                        reward, terminated, truncated = 0.0, False, False
                    else:
                        action = actions[j]
                        obs, reward, terminated, truncated, info = env.step(
                            action.copy() if isinstance(action, np.ndarray) else action)
                    autoreset[j] = bool(terminated or truncated)
                    observations[j] = obs
                    rewards[j] = reward
                    terminations[j] = terminated
                    truncations[j] = truncated
                    if info:
                        status[j] = _INFO
                        infos.append(info)
                except Exception:  # noqa: BLE001 - reported to the trainer, which closes everything
                    status[j] = _ERROR
                    producer.push(res_bytes, None)
                    pipe.send(traceback.format_exc())
                    return
            producer.push(res_bytes, None)
            # After the results: the trainer reads infos only once it has them, so a large info cannot fill the
            # pipe while the trainer waits on the ring.
            if infos:
                pipe.send(infos)
    finally:
        for env in envs:
            env.close()
        pipe.close()


class ShmVectorEnv(VectorEnv):
    """Gymnasium ``VectorEnv`` stepping ``len(env_fns)`` environments in worker processes over shmfusion rings.

    Args:
        env_fns: callables creating the sub-environments (as for ``SyncVectorEnv``); each must have an array
            observation and action space (Box, Discrete, MultiDiscrete, MultiBinary).
        copy: return copies of the observation batch (True, as Gymnasium does) or a view reused by the next call.
        context: the multiprocessing start method (None: the platform default, as ``AsyncVectorEnv``).
        step_timeout: seconds a ``step``/``reset`` may take before ``TimeoutError`` (None: no limit).
        liveness_poll: seconds between checks that the workers are alive while waiting for them.
        num_workers: the most worker processes to start (None: one fewer than the CPUs this process may run on,
            the trainer keeping one, and at least one); the sub-environments are shared out in contiguous runs of
            ``ceil(num_envs / num_workers)``, and each worker steps its run in sequence. More workers pay off
            when an ``env.step`` costs more than a process wake-up and CPUs are free; ``num_workers=len(env_fns)``
            gives one process per environment, as ``AsyncVectorEnv`` does.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], copy: bool = True, context: Optional[str] = None,
                 step_timeout: Optional[float] = None, liveness_poll: float = 0.1,
                 num_workers: Optional[int] = None):
        super().__init__()
        self.num_envs = len(env_fns)
        if self.num_envs == 0:
            raise ValueError("ShmVectorEnv needs at least one environment")
        if num_workers is not None and num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, not {num_workers}")
        self.copy = copy
        self.step_timeout = step_timeout
        self.liveness_poll = liveness_poll
        self.autoreset_mode = AutoresetMode.NEXT_STEP
        self._closed_ = False
        self._processes: list = []
        self._pipes: list = []
        self._command_rings: list = []
        self._result_rings: list = []
        workers = min(self.num_envs, num_workers if num_workers is not None else max(1, _available_cpus() - 1))
        #: Sub-environments per worker: worker ``w`` runs ``w * per_worker`` up to the next worker's first.
        self.per_worker = -(-self.num_envs // workers)
        #: The number of worker processes.
        self.num_workers = -(-self.num_envs // self.per_worker)

        probe = env_fns[0]()
        self.metadata = dict(probe.metadata)
        self.metadata["autoreset_mode"] = self.autoreset_mode
        self.render_mode = probe.render_mode
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        command_dtype, result_dtype = _layouts(self.single_observation_space, self.single_action_space)

        # One record per slot, num_workers * per_worker slots: sub-environment i is slot i (the last worker's
        # run may be short; its spare slots are never read).
        slots = self.num_workers * self.per_worker
        self._commands = np.zeros(slots, command_dtype)
        self._results = np.zeros(slots, result_dtype)
        self._kinds, self._seed_flags = self._commands["command"], self._commands["has_seed"]
        self._seeds, self._actions = self._commands["seed"][:self.num_envs], self._commands["action"][:self.num_envs]
        n = self.num_envs
        self._obs, self._rewards = self._results["obs"][:n], self._results["reward"][:n]
        self._terminations, self._truncations = self._results["terminated"][:n], self._results["truncated"][:n]
        self._status = self._results["status"][:n]

        ctx = mp.get_context(context)
        try:
            for w in range(self.num_workers):
                commands, results = self._ring(command_dtype), self._ring(result_dtype)
                self._command_rings.append((commands, command_dtype))
                self._result_rings.append((results, result_dtype))
                first = w * self.per_worker
                parent, child = ctx.Pipe()
                p = ctx.Process(
                    target=_worker, name=f"ShmVectorEnv-{w}", daemon=True,
                    args=(CloudpickleWrapper(list(env_fns[first:first + self.per_worker])), self.per_worker,
                          commands.id, results.id, command_dtype, result_dtype, child))
                p.start()
                child.close()
                self._processes.append(p)
                self._pipes.append(parent)
            self._senders = _native.ProducerGroup([r for r, _ in self._command_rings])
            self._receivers = _native.ConsumerGroup([r for r, _ in self._result_rings])
        except BaseException:
            self.close()
            raise

    def _ring(self, record: np.dtype) -> _native.SpscRing:
        """A private SysV ring of one worker's run of `record`s (the core's runtime-sized SPSC ring), removed
        once nobody is attached, so never leaked."""
        return _native.SpscRing.create("block", 2, element_size=record.itemsize * self.per_worker,
                                       element_align=min(record.alignment, 8), lifecycle="last-detach")

    def _exchange(self) -> None:
        """Sends the command batch and waits for every result, watching the workers."""
        if self._closed_:
            raise RuntimeError("ShmVectorEnv is closed")
        try:
            self._senders.push_each(self._commands.view(np.uint8), self.step_timeout)
            done, waited = 0, 0.0
            while done < self.num_workers:
                done = self._receivers.pop_each(self._results.view(np.uint8), done, self.liveness_poll)
                if done < self.num_workers:
                    waited += self.liveness_poll
                    self._check_workers()
                    if self.step_timeout is not None and waited >= self.step_timeout:
                        raise TimeoutError(f"worker {done} (sub-environments from {done * self.per_worker}) did "
                                           f"not answer within {self.step_timeout} s")
        except (_native.WriterGoneError, _native.ClosedError) as e:
            self._check_workers()
            worker = getattr(e, "index", -1)
            self._fail(f"worker {worker} is gone", worker)
        except _native.ReaderGoneError:
            self._check_workers()
            raise
        if self._status.any():
            for i in np.flatnonzero(self._status == _ERROR):
                worker = int(i) // self.per_worker
                message = self._receive(worker)
                self._fail(f"sub-environment {i} raised an exception in its worker:\n{message}", worker, int(i))

    def _receive(self, worker: int) -> Any:
        """The next message of a worker's pipe; a worker gone before sending it fails the environment."""
        try:
            return self._pipes[worker].recv()
        except (EOFError, OSError):
            self._check_workers()
            self._fail(f"worker {worker} closed its pipe", worker)

    def _check_workers(self) -> None:
        for w, p in enumerate(self._processes):
            if p.exitcode is not None:
                code = p.exitcode
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
                self._fail(f"worker {w} (pid {p.pid}) {how}", w)

    def _fail(self, message: str, worker: int, index: Optional[int] = None):
        self.close()
        raise WorkerError(message, worker * self.per_worker if index is None else index, worker)

    def _infos(self) -> dict[str, Any]:
        infos: dict[str, Any] = {}
        pending: dict[int, Any] = {}
        for i in np.flatnonzero(self._status == _INFO):
            worker = int(i) // self.per_worker
            if worker not in pending:
                # One message per worker and batch: its infos in sub-environment order.
                pending[worker] = iter(self._receive(worker))
            infos = self._add_info(infos, next(pending[worker]), int(i))
        return infos

    def _observations(self) -> np.ndarray:
        return self._obs.copy() if self.copy else self._obs

    def reset(self, *, seed: Optional[int | Sequence[Optional[int]]] = None,
              options: Optional[dict[str, Any]] = None):
        """Resets every sub-environment; ``seed`` an int (sub-environment ``i`` gets ``seed + i``) or a list."""
        if seed is None:
            seeds: list[Optional[int]] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        if options is not None and "reset_mask" in options:
            raise NotImplementedError("ShmVectorEnv does not support options['reset_mask']")
        self._kinds[:] = _RESET
        self._seed_flags[:] = 0 if options is None else 2
        self._seed_flags[:self.num_envs] |= np.array([s is not None for s in seeds], np.uint32)
        self._seeds[:] = [0 if s is None else s for s in seeds]
        if options is not None:
            for pipe in self._pipes:
                pipe.send(options)
        self._exchange()
        return self._observations(), self._infos()

    def step(self, actions):
        """Steps every sub-environment with its action (NEXT_STEP autoreset)."""
        self._kinds[:] = _STEP
        self._actions[...] = np.asarray(actions).reshape(self._actions.shape)
        self._exchange()
        return (self._observations(), self._rewards.copy(), self._terminations.copy(), self._truncations.copy(),
                self._infos() if self._status.any() else {})

    def close_extras(self, **kwargs: Any) -> None:
        """Stops the workers (a close command, then SIGKILL for any that do not exit) and drops the rings."""
        if self._closed_:
            return
        self._closed_ = True
        senders = getattr(self, "_senders", None)
        if senders is not None:
            # Every command ring has room (at most one command is ever in flight), also that of a dead worker.
            self._kinds[:] = _CLOSE
            try:
                senders.push_each(self._commands.view(np.uint8), 1.0)
            except Exception:  # noqa: BLE001 - the workers are killed below anyway
                pass
        for p in self._processes:
            p.join(timeout=2.0 if p.exitcode is None else 0)
        for p in self._processes:
            if p.exitcode is None:
                p.kill()
                p.join()
        for pipe in self._pipes:
            pipe.close()
        self._senders = self._receivers = None
        self._command_rings = self._result_rings = []

    def __del__(self):
        if not getattr(self, "_closed_", True):
            self.close()
