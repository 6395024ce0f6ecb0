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


@pytest.mark.parametrize("env_id, steps", [("CartPole-v1", 400), ("Pendulum-v1", 420), ("MountainCar-v0", 420),
                                           ("Acrobot-v1", 520)])
def test_same_trajectories_as_sync_vector_env(env_id, steps):
    fns = [lambda: gym.make(env_id) for _ in range(N)]
    ours, theirs = ShmVectorEnv(fns), gym.vector.SyncVectorEnv(fns)
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
    env = ShmVectorEnv([lambda: gym.make("CartPole-v1"), lambda: Failing(gym.make("CartPole-v1"))])
    ids = ring_ids(env)
    env.reset(seed=1)
    with pytest.raises(WorkerError, match="boom in the sub-environment") as failure:
        for _ in range(10):
            env.step(np.zeros(2, dtype=np.int64))
    assert failure.value.index == 1
    assert_all_gone(env, ids)


def test_worker_killed_mid_step_raises_a_clear_error_and_leaks_nothing():
    env = ShmVectorEnv([lambda: gym.make("CartPole-v1"), lambda: Slow(gym.make("CartPole-v1"))],
                       step_timeout=20)
    ids = ring_ids(env)
    env.reset(seed=1)
    victim = env._processes[1].pid
    env.step(np.zeros(2, dtype=np.int64))
    env.step(np.zeros(2, dtype=np.int64))
    killer = threading.Timer(0.3, lambda: os.kill(victim, signal.SIGKILL))
    killer.start()
    # step_timeout is only a backstop: a hang would fail this test with TimeoutError instead of WorkerError.
    with pytest.raises(WorkerError, match="killed by SIGKILL") as failure:
        env.step(np.zeros(2, dtype=np.int64))
    killer.join()
    assert failure.value.index == 1
    assert_all_gone(env, ids)


def test_close_stops_workers_and_removes_rings():
    env = ShmVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(2)])
    ids = ring_ids(env)
    assert ids <= segment_ids()
    env.reset(seed=0)
    env.step(np.zeros((2, 1), dtype=np.float32))
    env.close()
    assert_all_gone(env, ids)
