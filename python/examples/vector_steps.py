"""Runs N environments in parallel through shmfusion rings and prints steps per second (trains nothing).

    python vector_steps.py [--env CartPole-v1] [--envs 4] [--workers W] [--seconds 5]
"""

import argparse
import time

import gymnasium as gym
import numpy as np

from shmfusion.vector import ShmVectorEnv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--envs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs - 1, at least 1)")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    envs = ShmVectorEnv([lambda: gym.make(args.env) for _ in range(args.envs)], num_workers=args.workers)
    try:
        envs.reset(seed=0)
        envs.action_space.seed(0)
        actions = [envs.action_space.sample() for _ in range(64)]
        steps, episodes, start = 0, 0, time.perf_counter()
        next_report = start + 1.0
        while (now := time.perf_counter()) - start < args.seconds:
            _, _, terminated, truncated, _ = envs.step(actions[steps % 64])
            episodes += int(np.sum(terminated | truncated))
            steps += 1
            if now >= next_report:
                print(f"{now - start:4.1f} s  {steps * args.envs / (now - start):9.0f} steps/s  "
                      f"{episodes} episodes")
                next_report += 1.0
        elapsed = time.perf_counter() - start
        print(f"{args.envs} x {args.env} in {envs.num_workers} workers: {steps * args.envs} steps in {elapsed:.1f} s = "
              f"{steps * args.envs / elapsed:.0f} steps/s ({episodes} episodes ended)")
    finally:
        envs.close()


if __name__ == "__main__":
    main()
