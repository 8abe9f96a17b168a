"""JupyterLab on the study's notebooks: the one set of server settings that `make lab` and the browser
test share.

``python -m alertlib.study.lab`` (what `make lab` runs) opens JupyterLab on ``notebooks/`` with the
``alertlib`` kernel as the default; further arguments go to JupyterLab. :class:`LabServer` starts the
same server in a child process on a free port of 127.0.0.1, with a token and no browser, and stops it
with its kernels.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from alertlib.core.paths import REPO_ROOT
from alertlib.study.runner import KERNEL_NAME

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
LOOPBACK = "127.0.0.1"


def lab_command(
    notebook_dir: str | Path = NOTEBOOK_DIR,
    *,
    port: int | None = None,
    token: str | None = None,
    open_browser: bool = True,
) -> list[str]:
    """The command line that starts JupyterLab with this environment's Python.

    Parameters
    ----------
    notebook_dir:
        The folder JupyterLab shows (its root); default ``notebooks/``.
    port:
        Serve on this port of 127.0.0.1 only, failing rather than moving to another port when it is
        taken; ``None`` keeps JupyterLab's own choice (localhost:8888 or the next free one).
    token:
        The token a client must present; ``None`` lets JupyterLab make one and print it.
    open_browser:
        Whether JupyterLab opens the user's browser.
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={Path(notebook_dir).resolve()}",
        f"--MultiKernelManager.default_kernel_name={KERNEL_NAME}",
    ]
    if port is not None:
        command += [f"--ServerApp.ip={LOOPBACK}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        command.append("--allow-root")
    return command


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on at the moment of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class LabServer:
    """JupyterLab in a child process on a free port of 127.0.0.1, with a token and no browser.

    Use it as a context manager: entering starts the server and waits until it answers, leaving stops it
    (its kernels too). The server's output goes to ``log_path``.

    Parameters
    ----------
    notebook_dir:
        The folder the server shows.
    log_path:
        File that receives the server's output (read back in the error when it fails to start).
    env:
        Environment of the server and hence of its kernels; default this process's environment.
    extra_arguments:
        Further JupyterLab options, after those of :func:`lab_command`.
    """

    def __init__(
        self,
        notebook_dir: str | Path,
        log_path: str | Path,
        env: dict[str, str] | None = None,
        extra_arguments: Sequence[str] = (),
    ):
        self.notebook_dir = Path(notebook_dir)
        self.extra_arguments = list(extra_arguments)
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None

    def url(self, path: str = "lab") -> str:
        """The address of ``path`` on the server, the token included."""
        return f"http://{LOOPBACK}:{self.port}/{path.lstrip('/')}?token={self.token}"

    def start(self, timeout: float = 180.0) -> LabServer:
        """Start the server and wait until its REST API answers; raise ``RuntimeError`` if it does not.

        A server that is already running is left as it is (so ``with server.start():`` starts one).
        """
        if self.process is not None and self.process.poll() is None:
            return self
        command = lab_command(self.notebook_dir, port=self.port, token=self.token, open_browser=False)
        command += self.extra_arguments
        with open(self.log_path, "wb") as log:
            # a session of its own, so that stop() can end the server and the kernels it started together
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.port}/api/status", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, n_chars: int = 4000) -> str:
        """The end of the server's output."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-n_chars:]

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to shut down (it stops its kernels); kill its whole session if it does not."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # the server is still alive, so its session id is still ours: end it and its kernels
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Replace this process by JupyterLab on ``notebooks/`` (what `make lab` runs); ``argv`` goes to it."""
    command = lab_command() + list(sys.argv[1:] if argv is None else argv)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
