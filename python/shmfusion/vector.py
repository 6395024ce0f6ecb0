"""A Gymnasium vector environment whose workers exchange actions and step results through shmfusion rings.

:class:`ShmVectorEnv` runs each sub-environment in a worker process, like Gymnasium's ``AsyncVectorEnv``, but
instead of pickling commands and results through pipes it gives every worker two SPSC rings in one System V
segment each: commands (step with an action, reset with a seed) go one way, step results (observation,
reward, termination and truncation flags) come back the other, as fixed-layout records copied once into the
batch arrays. The trainer pushes all actions and collects all results with one call each, the GIL released while
it waits. Infos travel through a pipe, and only when a sub-environment returns a non-empty info dict.

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

    def __init__(self, message: str, index: int):
        super().__init__(message)
        #: The index of the failing sub-environment.
        self.index = index


def _array_space(space: gym.Space, what: str) -> tuple[np.dtype, tuple[int, ...]]:
    shape, dtype = getattr(space, "shape", None), getattr(space, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"ShmVectorEnv supports array {what} spaces (Box, Discrete, MultiDiscrete, MultiBinary), "
                        f"not {space}")
    return np.dtype(dtype), tuple(shape)


def _layouts(obs_space: gym.Space, act_space: gym.Space) -> tuple[np.dtype, np.dtype]:
    obs_dtype, obs_shape = _array_space(obs_space, "observation")
    act_dtype, act_shape = _array_space(act_space, "action")
    command = np.dtype([("command", "u4"), ("has_seed", "u4"), ("seed", "i8"), ("action", act_dtype, act_shape)],
                       align=True)
    result = np.dtype([("reward", "f8"), ("terminated", "?"), ("truncated", "?"), ("status", "u1"),
                       ("obs", obs_dtype, obs_shape)], align=True)
    return command, result


def _worker(index: int, env_fn: CloudpickleWrapper, command_id: int, result_id: int, command_dtype: np.dtype,
            result_dtype: np.dtype, pipe) -> None:
    # The trainer handles Ctrl-C and tells the workers to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    commands = _native.SpscRing.open("block", 2, element_size=command_dtype.itemsize,
                                     element_align=min(command_dtype.alignment, 8), id=command_id)
    results = _native.SpscRing.open("block", 2, element_size=result_dtype.itemsize,
                                    element_align=min(result_dtype.alignment, 8), id=result_id)
    consumer, producer = commands.consumer(), results.producer()
    cmd = np.zeros(1, command_dtype)
    res = np.zeros(1, result_dtype)
    cmd_bytes, res_bytes = cmd.view(np.uint8), res.view(np.uint8)
    env = None
    autoreset = False
    try:
        env = env_fn()
        while True:
            try:
                consumer.pop(cmd_bytes, None)
            except (_native.WriterGoneError, _native.ClosedError):
                return  # the trainer is gone
            command = int(cmd["command"][0])
            if command == _CLOSE:
                return
            info: dict = {}
            try:
                if command == _RESET:
                    options = pipe.recv() if cmd["has_seed"][0] & 2 else None
                    seed = int(cmd["seed"][0]) if cmd["has_seed"][0] & 1 else None
                    obs, info = env.reset(seed=seed, options=options)
                    reward, terminated, truncated = 0.0, False, False
                elif autoreset:
                    obs, info = env.reset()
                    reward, terminated, truncated = 0.0, False, False
                else:
                    action = cmd["action"][0]
                    obs, reward, terminated, truncated, info = env.step(
                        action.copy() if isinstance(action, np.ndarray) else action)
                autoreset = bool(terminated or truncated)
                res["obs"][0] = obs
                res["reward"][0] = reward
                res["terminated"][0] = terminated
                res["truncated"][0] = truncated
                res["status"][0] = _INFO if info else _OK
                if info:
                    pipe.send(info)
            except Exception:  # noqa: BLE001 - reported to the trainer, which closes everything
                res["status"][0] = _ERROR
                pipe.send(traceback.format_exc())
                producer.push(res_bytes, None)
                return
            producer.push(res_bytes, None)
    finally:
        if env is not None:
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
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], copy: bool = True, context: Optional[str] = None,
                 step_timeout: Optional[float] = None, liveness_poll: float = 0.1):
        super().__init__()
        self.num_envs = len(env_fns)
        if self.num_envs == 0:
            raise ValueError("ShmVectorEnv needs at least one environment")
        self.copy = copy
        self.step_timeout = step_timeout
        self.liveness_poll = liveness_poll
        self.autoreset_mode = AutoresetMode.NEXT_STEP
        self._closed_ = False
        self._processes: list = []
        self._pipes: list = []

        probe = env_fns[0]()
        self.metadata = dict(probe.metadata)
        self.metadata["autoreset_mode"] = self.autoreset_mode
        self.render_mode = probe.render_mode
        self.single_observation_space = probe.observation_space
        self.single_action_space = probe.action_space
        probe.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._command_dtype, self._result_dtype = _layouts(self.single_observation_space, self.single_action_space)

        self._command_rings = [self._ring(self._command_dtype) for _ in range(self.num_envs)]
        self._result_rings = [self._ring(self._result_dtype) for _ in range(self.num_envs)]
        self._commands = np.zeros(self.num_envs, self._command_rings[0][1])
        self._results = np.zeros(self.num_envs, self._result_rings[0][1])

        ctx = mp.get_context(context)
        try:
            for i, env_fn in enumerate(env_fns):
                parent, child = ctx.Pipe()
                p = ctx.Process(
                    target=_worker, name=f"ShmVectorEnv-{i}", daemon=True,
                    args=(i, CloudpickleWrapper(env_fn), self._command_rings[i][0].id, self._result_rings[i][0].id,
                          self._command_rings[i][1], self._result_rings[i][1], child))
                p.start()
                child.close()
                self._processes.append(p)
                self._pipes.append(parent)
            self._senders = _native.ProducerGroup([r for r, _ in self._command_rings])
            self._receivers = _native.ConsumerGroup([r for r, _ in self._result_rings])
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ring(record: np.dtype) -> tuple[_native.SpscRing, np.dtype]:
        """A private SysV ring of `record`s (the core's runtime-sized SPSC ring), removed once nobody is attached,
        so never leaked."""
        ring = _native.SpscRing.create("block", 2, element_size=record.itemsize,
                                       element_align=min(record.alignment, 8), lifecycle="last-detach")
        return ring, record

    def _exchange(self) -> None:
        """Sends the command batch and waits for every result, watching the workers."""
        if self._closed_:
            raise RuntimeError("ShmVectorEnv is closed")
        try:
            self._senders.push_each(self._commands.view(np.uint8), self.step_timeout)
            done, waited = 0, 0.0
            while done < self.num_envs:
                done = self._receivers.pop_each(self._results.view(np.uint8), done, self.liveness_poll)
                if done < self.num_envs:
                    waited += self.liveness_poll
                    self._check_workers()
                    if self.step_timeout is not None and waited >= self.step_timeout:
                        raise TimeoutError(f"sub-environment {done} did not answer within {self.step_timeout} s")
        except (_native.WriterGoneError, _native.ClosedError) as e:
            self._check_workers()
            self._fail(f"worker {getattr(e, 'index', '?')} is gone", getattr(e, "index", -1))
        except _native.ReaderGoneError:
            self._check_workers()
            raise
        status = self._results["status"]
        for i in np.flatnonzero(status == _ERROR):
            message = self._pipes[i].recv()
            self._fail(f"sub-environment {i} raised an exception in its worker:\n{message}", int(i))

    def _check_workers(self) -> None:
        for i, p in enumerate(self._processes):
            if p.exitcode is not None:
                code = p.exitcode
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
                self._fail(f"worker {i} (pid {p.pid}) {how}", i)

    def _fail(self, message: str, index: int):
        self.close()
        raise WorkerError(message, index)

    def _infos(self) -> dict[str, Any]:
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(self._results["status"] == _INFO):
            infos = self._add_info(infos, self._pipes[i].recv(), int(i))
        return infos

    def _observations(self) -> np.ndarray:
        obs = self._results["obs"]
        return obs.copy() if self.copy else obs

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
        self._commands["command"] = _RESET
        self._commands["has_seed"] = [(0 if s is None else 1) | (0 if options is None else 2) for s in seeds]
        self._commands["seed"] = [0 if s is None else s for s in seeds]
        if options is not None:
            for pipe in self._pipes:
                pipe.send(options)
        self._exchange()
        return self._observations(), self._infos()

    def step(self, actions):
        """Steps every sub-environment with its action (NEXT_STEP autoreset)."""
        self._commands["command"] = _STEP
        self._commands["action"] = np.asarray(actions).reshape(self._commands["action"].shape)
        self._exchange()
        return (self._observations(), self._results["reward"].copy(), self._results["terminated"].copy(),
                self._results["truncated"].copy(), self._infos())

    def close_extras(self, **kwargs: Any) -> None:
        """Stops the workers (a close command, then SIGKILL for any that do not exit) and drops the rings."""
        if self._closed_:
            return
        self._closed_ = True
        senders = getattr(self, "_senders", None)
        if senders is not None:
            # Every command ring has room (at most one command is ever in flight), also that of a dead worker.
            self._commands["command"] = _CLOSE
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
