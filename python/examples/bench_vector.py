"""Steps per second of ShmVectorEnv against Gymnasium's AsyncVectorEnv(shared_memory=True) and SyncVectorEnv,
side by side in one run, for N = 2, 4, 8 copies of CartPole-v1 and of a synthetic environment with 84x84x3 uint8
observations; and the per-step overhead over the bare environment step. A measurement, not a test.

    python bench_vector.py [--seconds 0.5] [--rounds 6] [--envs 2 4 8] [--per-env]

For each environment and N, every contender (and the bare environment in a plain loop) is built once and then
measured in turns: `--rounds` rounds of `--seconds` each, contenders interleaved within a round, so that a
machine whose load changes during the run weighs on all of them alike. Throughput is environment steps per
second (N per vector step) over all rounds; the ratio column gives shmfusion / async over all rounds and, in
brackets, its lowest and highest value in a single round. Overhead per env step is (time per vector step / N)
- (time of one bare env.step in a plain loop): what the vectorisation costs (or, when negative, saves by running
the environments in parallel) for each environment step; the second table gives the same from median times,
which load spikes on a shared machine distort far less. `--per-env` adds ShmVectorEnv with one worker process
per environment (num_workers=N), AsyncVectorEnv's process layout.
"""

import argparse
import os
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


class Vector:
    """A vector environment being measured: reset once, then stepped for a while at each turn."""

    def __init__(self, envs):
        self.envs, self.steps, self.seconds, self.rounds, self.durations = envs, 0, 0.0, [], []
        envs.reset(seed=0)
        envs.action_space.seed(0)
        self.actions = [envs.action_space.sample() for _ in range(64)]
        for i in range(50):  # warm-up
            envs.step(self.actions[i % 64])

    def run(self, seconds: float) -> None:
        n, start = 0, time.perf_counter()
        clock = start
        while clock - start < seconds:
            self.envs.step(self.actions[n % 64])
            n += 1
            now = time.perf_counter()
            self.durations.append(now - clock)
            clock = now
        elapsed = clock - start
        self.steps += n * self.envs.num_envs
        self.seconds += elapsed
        self.rounds.append(n * self.envs.num_envs / elapsed)

    def rate(self) -> float:
        return self.steps / self.seconds

    def median_step(self) -> float:
        """The median time of one vector step: what it costs when the machine's load leaves it alone."""
        return float(np.median(self.durations))

    def close(self) -> None:
        self.envs.close()


class Bare:
    """One environment stepped in a plain loop (resetting at episode ends): the cost of env.step itself."""

    def __init__(self, name: str):
        self.env = make(name)()
        self.env.reset(seed=0)
        self.env.action_space.seed(0)
        self.actions = [self.env.action_space.sample() for _ in range(64)]
        self.steps, self.seconds, self.durations = 0, 0.0, []

    def run(self, seconds: float) -> None:
        n, start = 0, time.perf_counter()
        clock = start
        while clock - start < seconds:
            _, _, term, trunc, _ = self.env.step(self.actions[n % 64])
            if term or trunc:
                self.env.reset()
            n += 1
            now = time.perf_counter()
            self.durations.append(now - clock)
            clock = now
        self.steps += n
        self.seconds += clock - start

    def step_seconds(self) -> float:
        return self.seconds / self.steps

    def median_step(self) -> float:
        return float(np.median(self.durations))

    def close(self) -> None:
        self.env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="length of one contender's turn")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--envs", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--per-env", action="store_true", help="also ShmVectorEnv with num_workers=N")
    args = ap.parse_args()
    kinds = {
        "sync": lambda fns: gym.vector.SyncVectorEnv(fns),
        "async": lambda fns: gym.vector.AsyncVectorEnv(fns, shared_memory=True),
        "shmfusion": lambda fns: ShmVectorEnv(fns),
    }
    if args.per_env:
        kinds["shmfusion/env"] = lambda fns: ShmVectorEnv(fns, num_workers=len(fns))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; "
          f"{args.rounds} rounds of {args.seconds} s per contender", flush=True)
    rows, medians = [], []
    for name in ["CartPole-v1", "SyntheticPixels84x84x3"]:
        for n in args.envs:
            bare = Bare(name)
            contenders: dict = {}
            try:
                for kind, build in kinds.items():
                    contenders[kind] = Vector(build([make(name)] * n))
                for _ in range(args.rounds):
                    bare.run(args.seconds / 2)
                    for c in contenders.values():
                        c.run(args.seconds)
            finally:
                bare.close()
                for c in contenders.values():
                    c.close()
            rate = {k: c.rate() for k, c in contenders.items()}
            per_round = [s / a for s, a in zip(contenders["shmfusion"].rounds, contenders["async"].rounds)]
            bare_s = bare.step_seconds()
            overhead = {k: (1e6 / r - bare_s * 1e6) for k, r in rate.items()}
            rows.append((name, n, bare_s * 1e6, rate, overhead, per_round))
            medians.append((name, n, bare.median_step() * 1e6,
                            {k: c.median_step() * 1e6 for k, c in contenders.items()}))
            print(f"{name} N={n}: bare {bare_s * 1e6:.1f} us/step; " + ", ".join(
                f"{k} {r:.0f} steps/s ({overhead[k]:+.1f} us)" for k, r in rate.items())
                + f"; shmfusion/async per round {' '.join(f'{x:.2f}' for x in per_round)}", flush=True)
    extra = " | shmfusion, one process per env steps/s" if args.per_env else ""
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end\n")
    print("| environment | N | sync steps/s | async steps/s | shmfusion steps/s | shmfusion / async (rounds: min-max) | "
          f"bare env.step | overhead per env step: sync / async / shmfusion{extra} |")
    print("|" + "---|" * (9 if args.per_env else 8))
    for name, n, bare, rate, overhead, per_round in rows:
        tail = f" | {rate['shmfusion/env']:.0f}" if args.per_env else ""
        print(f"| {name} | {n} | {rate['sync']:.0f} | {rate['async']:.0f} | {rate['shmfusion']:.0f} | "
              f"{rate['shmfusion'] / rate['async']:.2f}x ({min(per_round):.2f}-{max(per_round):.2f}) | "
              f"{bare:.1f} us | {overhead['sync']:+.1f} / {overhead['async']:+.1f} / {overhead['shmfusion']:+.1f} us"
              f"{tail} |")
    print("\nMedian times (robust to load spikes): one vector step of each contender, one bare env.step, and the "
          "median overhead per vector step = median vector step - N x median bare step.\n")
    names = list(medians[0][3]) if medians else []
    print("| environment | N | bare env.step | median vector step: " + " / ".join(names)
          + " | median overhead per vector step: " + " / ".join(names) + " |")
    print("|" + "---|" * 5)
    for name, n, bare, step in medians:
        print(f"| {name} | {n} | {bare:.1f} us | " + " / ".join(f"{step[k]:.0f}" for k in names) + " us | "
              + " / ".join(f"{step[k] - n * bare:+.0f}" for k in names) + " us |")


if __name__ == "__main__":
    main()
