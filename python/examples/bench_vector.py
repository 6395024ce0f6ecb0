"""Steps per second of ShmVectorEnv against Gymnasium's AsyncVectorEnv(shared_memory=True) and SyncVectorEnv,
side by side in one run, for N = 2, 4, 8 copies of CartPole-v1 and of a synthetic environment with 84x84x3 uint8
observations; and the per-step overhead over the bare environment step. A measurement, not a test.

    python bench_vector.py [--seconds 2] [--envs 2 4 8]

Throughput is environment steps per second (N per vector step). Overhead per env step is (time per vector step
/ N) - (time of one bare env.step in a plain loop): what the vectorisation costs (or, when negative, saves by
running the environments in parallel) for each environment step.
"""

import argparse
import time

import gymnasium as gym
import numpy as np

from shmfusion.vector import ShmVectorEnv


class SyntheticPixels(gym.Env):
    """84x84x3 uint8 observations (eight fixed random frames in turn), 4 actions, episodes of 500 steps."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self._frames = np.random.default_rng(0).integers(0, 256, (8, 84, 84, 3), dtype=np.uint8)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._frames[0], {}

    def step(self, action):
        self._t += 1
        return self._frames[self._t % 8], 1.0, self._t >= 500, False, {}


def make(name):
    return (lambda: gym.make("CartPole-v1")) if name == "CartPole-v1" else SyntheticPixels


def steps_per_second(envs, seconds: float) -> float:
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(64)]
    for i in range(50):  # warm-up
        envs.step(actions[i % 64])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            envs.step(actions[n % 64])
            n += 1
    return n * envs.num_envs / (time.perf_counter() - start)


def bare_step_seconds(name: str, seconds: float) -> float:
    env = make(name)()
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, term, trunc, _ = env.step(actions[n % 64])
        if term or trunc:
            env.reset()
        n += 1
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--envs", type=int, nargs="+", default=[2, 4, 8])
    args = ap.parse_args()
    kinds = {
        "sync": lambda fns: gym.vector.SyncVectorEnv(fns),
        "async": lambda fns: gym.vector.AsyncVectorEnv(fns, shared_memory=True),
        "shmfusion": lambda fns: ShmVectorEnv(fns),
    }
    rows = []
    for name in ["CartPole-v1", "SyntheticPixels84x84x3"]:
        bare = bare_step_seconds(name, args.seconds)
        for n in args.envs:
            rate = {}
            for kind, build in kinds.items():
                envs = build([make(name)] * n)
                try:
                    rate[kind] = steps_per_second(envs, args.seconds)
                finally:
                    envs.close()
            overhead = {k: (1e6 / r - bare * 1e6) for k, r in rate.items()}
            rows.append((name, n, bare * 1e6, rate, overhead))
            print(f"{name} N={n}: bare {bare * 1e6:.1f} us/step; " + ", ".join(
                f"{k} {r:.0f} steps/s ({overhead[k]:+.1f} us)" for k, r in rate.items()), flush=True)
    header = ("| environment | N | sync steps/s | async steps/s | shmfusion steps/s | shmfusion / async | "
              "bare env.step | overhead per env step: sync / async / shmfusion |")
    print()
    print(header)
    print("|" + "---|" * 8)
    for name, n, bare, rate, overhead in rows:
        print(f"| {name} | {n} | {rate['sync']:.0f} | {rate['async']:.0f} | {rate['shmfusion']:.0f} | "
              f"{rate['shmfusion'] / rate['async']:.2f}x | {bare:.1f} us | "
              f"{overhead['sync']:+.1f} / {overhead['async']:+.1f} / {overhead['shmfusion']:+.1f} us |")


if __name__ == "__main__":
    main()
