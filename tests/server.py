"""A real `unify serve` process for the tests that need one: started on a free port, waited for until `/readyz`
answers 200, stopped with SIGINT as an operator would (killed if it does not stop within 30 s)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.raw import TEST_KEYRING

UNIFY = [sys.executable, "-m", "unify.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unify_env(**extra: str) -> dict[str, str]:
    """The test process's environment without its database, with JSON logs, the test raw keys, and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "UNIFY_DATABASE_URL")}
    env.update(UNIFY_LOG_FORMAT="json", UNIFY_RAW_KEYS=TEST_KEYRING.to_setting(), **extra)
    return env


def start_unify(env: dict[str, str], output: Path | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `unify serve` with `env` (its output to `output`, else a pipe) and wait until it is ready; returns its
    base URL and the process. A server that exits or is not ready within 60 s fails the test, with its output."""
    port = free_port()
    command = [*UNIFY, "serve", "--port", str(port)]
    if output is None:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    else:
        with output.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                shown = output.read_text(errors="replace") if output else process.stdout.read().decode()  # type: ignore[union-attr]
                raise AssertionError(f"unify serve exited with {process.returncode}:\n{shown[-5000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return base, process
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "unify serve did not become ready"
            time.sleep(0.1)
    except BaseException:
        stop_unify(process)
        raise


def stop_unify(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, then wait; killed after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def unify_serve(env: dict[str, str], output: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`unify serve` for the duration of the block: (base URL, process)."""
    base, process = start_unify(env, output)
    try:
        yield base, process
    finally:
        stop_unify(process)
