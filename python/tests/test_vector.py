"""ShmVectorEnv against Gymnasium's own SyncVectorEnv, and its failure handling."""

import os
import signal
import threading

import gymnasium as gym
import numpy as np
import pytest

from conftest import segment_ids
from shmfusion.vector import ShmVectorEnv, WorkerError

N = 3


# num_workers None: the default (on 2 CPUs, one worker); 1: one worker steps them all; 2: runs of 2 and 1
# sub-environments; N: one process per sub-environment.
@pytest.mark.parametrize("env_id, steps, workers", [("CartPole-v1", 400, None), ("Pendulum-v1", 420, 2),
                                                    ("MountainCar-v0", 420, None), ("Acrobot-v1", 520, 2),
                                                    ("CartPole-v1", 300, 1), ("CartPole-v1", 300, N)])
def test_same_trajectories_as_sync_vector_env(env_id, steps, workers):
    fns = [lambda: gym.make(env_id) for _ in range(N)]
    ours, theirs = ShmVectorEnv(fns, num_workers=workers), gym.vector.SyncVectorEnv(fns)
    try:
        assert ours.metadata["autoreset_mode"] == theirs.metadata["autoreset_mode"]
        assert (ours.observation_space, ours.action_space) == (theirs.observation_space, theirs.action_space)
        obs, _ = ours.reset(seed=123)
        expected, _ = theirs.reset(seed=123)
        np.testing.assert_array_equal(obs, expected)
        assert obs.dtype == expected.dtype
        theirs.action_space.seed(7)
        ended = 0
        for t in range(steps):
            actions = theirs.action_space.sample()
            got, want = ours.step(actions), theirs.step(actions)
            for name, a, b in zip(("obs", "reward", "terminated", "truncated"), got[:4], want[:4]):
                assert a.dtype == b.dtype and np.array_equal(a, b), f"step {t}: {name} {a} != {b}"
            ended += int(np.sum(got[2] | got[3]))
        # The run crossed autoresets (episodes ending by termination or by the time limit).
        assert ended > 0
    finally:
        ours.close()
        theirs.close()


class Chatty(gym.Wrapper):
    """Returns a non-empty info on some steps (which ones depends on the sub-environment) and on reset."""

    def __init__(self, env, index):
        super().__init__(env)
        self.index, self.steps = index, 0

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "origin": np.array([self.index, 0])}

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        if (self.steps + self.index) % 3 == 0:
            info = {**info, "tick": self.steps * 10 + self.index}
        return obs, reward, terminated, truncated, info


def test_infos_are_those_of_sync_vector_env():
    n = 5
    fns = [lambda i=i: Chatty(gym.make("CartPole-v1"), i) for i in range(n)]
    ours, theirs = ShmVectorEnv(fns, num_workers=2), gym.vector.SyncVectorEnv(fns)
    try:
        assert ours.num_workers == 2 and ours.per_worker == 3
        got, want = ours.reset(seed=5)[1], theirs.reset(seed=5)[1]
        assert got.keys() == want.keys() == {"origin", "_origin"}
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
        seen = 0
        for t in range(60):
            actions = np.full(n, t % 2)
            got, want = ours.step(actions)[4], theirs.step(actions)[4]
            assert got.keys() == want.keys(), f"step {t}"
            for k in want:
                np.testing.assert_array_equal(got[k], want[k], err_msg=f"step {t}: {k}")
            seen += len(want)
        assert seen > 0
    finally:
        ours.close()
        theirs.close()


class Failing(gym.Wrapper):
    """Raises on the 5th step."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps == 5:
            raise ValueError("boom in the sub-environment")
        return self.env.step(action)


class Slow(gym.Wrapper):
    """Sleeps during its 3rd step, long enough to be killed mid-step."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps == 3:
            threading.Event().wait(30)
        return self.env.step(action)


def ring_ids(env: ShmVectorEnv) -> set[int]:
    return {r.id for r, _ in env._command_rings + env._result_rings}


def assert_all_gone(env: ShmVectorEnv, ids: set[int]):
    assert all(p.exitcode is not None for p in env._processes), "a worker is still running"
    assert not ids & segment_ids(), "a ring segment was left behind"


def test_exception_in_a_worker_is_raised_and_everything_is_closed():
    env = ShmVectorEnv([lambda: gym.make("CartPole-v1"), lambda: Failing(gym.make("CartPole-v1"))], num_workers=2)
    ids = ring_ids(env)
    env.reset(seed=1)
    with pytest.raises(WorkerError, match="boom in the sub-environment") as failure:
        for _ in range(10):
            env.step(np.zeros(2, dtype=np.int64))
    assert failure.value.index == 1 and failure.value.worker == 1
    assert_all_gone(env, ids)


# Two environments with one worker each; four with two each (the victim's worker also runs a healthy
# environment, and the error names the first environment of the worker).
@pytest.mark.parametrize("n, first_of_victim", [(2, 1), (4, 2)])
def test_worker_killed_mid_step_raises_a_clear_error_and_leaks_nothing(n, first_of_victim):
    fns = [lambda: gym.make("CartPole-v1") for _ in range(n - 1)] + [lambda: Slow(gym.make("CartPole-v1"))]
    env = ShmVectorEnv(fns, step_timeout=20, num_workers=2)
    ids = ring_ids(env)
    env.reset(seed=1)
    victim = env._processes[1].pid
    env.step(np.zeros(n, dtype=np.int64))
    env.step(np.zeros(n, dtype=np.int64))
    killer = threading.Timer(0.3, lambda: os.kill(victim, signal.SIGKILL))
    killer.start()
    # step_timeout is only a backstop: a hang would fail this test with TimeoutError instead of WorkerError.
    with pytest.raises(WorkerError, match="worker 1 .* killed by SIGKILL") as failure:
        env.step(np.zeros(n, dtype=np.int64))
    killer.join()
    assert (failure.value.index, failure.value.worker) == (first_of_victim, 1)
    assert_all_gone(env, ids)


def test_close_stops_workers_and_removes_rings():
    env = ShmVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(2)])
    ids = ring_ids(env)
    assert ids <= segment_ids()
    env.reset(seed=0)
    env.step(np.zeros((2, 1), dtype=np.float32))
    env.close()
    assert_all_gone(env, ids)
