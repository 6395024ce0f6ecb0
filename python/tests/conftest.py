"""Shared fixtures: the Rust peer program and fresh System V keys."""

import itertools
import os
import subprocess

import pytest

_keys = itertools.count()


def segment_ids() -> set[int]:
    """The ids of the System V segments that exist now (in this IPC namespace)."""
    with open("/proc/sysvipc/shm") as f:
        next(f)
        return {int(line.split()[1]) for line in f if line.strip()}


@pytest.fixture
def key() -> int:
    """A key no other test (or test run) uses: derived from the pid, 4 apart so a peer can use key+1, key+2."""
    return 0x5E000000 | ((os.getpid() & 0xFFF) << 12) | (next(_keys) * 4)


@pytest.fixture(scope="session")
def peer_path() -> str:
    path = os.environ.get("SHMFUSION_PY_PEER")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("SHMFUSION_PY_PEER must name the built examples/py_peer (cargo build --example py_peer)")
    return path


@pytest.fixture
def run_peer(peer_path):
    """Starts `py_peer ARGS...`; every process started is ended (stdin closed, then killed) after the test."""
    started = []

    def start(*args) -> subprocess.Popen:
        p = subprocess.Popen([peer_path, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.stdin.close()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
