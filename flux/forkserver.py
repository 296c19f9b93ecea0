"""A fork server for local runs of many short jobs: the jobs fork from one process that has imported torch, timm
and pandas once, instead of each importing them.

At tiny scale a job spends more time starting than working: `import torch` alone takes about 3 s on 2 cores, a
training job imports about 6 s of modules (torch, torch._dynamo at its first optimiser step, timm, pandas) before
2 to 20 s of training, and the embedded default runs about 180 of them. Python's own `multiprocessing` forkserver
(with `set_forkserver_preload`) and the Gradle daemon are the same idea. The Snakefile starts the server when the
configuration asks for it (`fork_server`, the embedded default) and the run is local (a job on another node cannot
reach its socket); `python -m flux` sends its arguments there when FLUX_FORK_SERVER names the socket, and runs
as usual when the variable is unset or the server cannot be reached.

A forked job is run as a fresh process would run it: its arguments, working directory, environment and standard
streams are the client's; it gets its own process group (killed if the client goes away, e.g. when Snakemake
cancels the job, and if the server dies); its exit status is the client's. The server forks before any torch
computation, so the job starts its own threads (flux sets torch's from the rule's `threads`), and it seeds its
own generators as every flux job does. Libraries that read their thread count from the environment when they
load (OpenBLAS, OpenMP) read it in the server, which runs with the values Snakemake gives a one-thread job.
What differs is what Snakemake's `benchmark:` files measure: the client (no CPU, a few MB), not the job; the
client writes the job's CPU seconds and peak memory as the last line of the job's log instead.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# flux.verbs is imported where the server needs it, not here: every forked job's client imports this module, and
# flux.verbs brings flux.train.runs (0.14 s)
SOCKET_VARIABLE = "FLUX_FORK_SERVER"
ENTRY = "flux.cli:main"  # what a forked job runs, with the client's arguments
# Imported by jobs after start-up, so not by their verbs' modules: torch's optimisers import torch._dynamo at the
# first step, flux.train.optim imports timm's optimiser and scheduler when it builds them, the video readers their
# decoders when they open a file.
LAZY_IMPORTS = ("torch._dynamo", "timm.optim", "timm.scheduler", "decord", "av")
HEADER = struct.Struct("!I")  # the request's length, before its JSON
STREAMS = (0, 1, 2)  # stdin, stdout, stderr: passed to the server, which the job writes to
PARENT_CHECK_SECONDS = 1.0  # how often the server checks that the process that started it is alive
REQUEST_TIMEOUT_SECONDS = 10.0  # a client sends its request at once; one that stalls must not stall the server
STARTUP_TIMEOUT_SECONDS = 300.0
# what Snakemake sets to a job's `threads` (snakemake.shell), read by BLAS and OpenMP when they load: in the server
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
PR_SET_PDEATHSIG = 1  # prctl(2): a signal for this process when its parent dies
DEFERRED_SIGNALS = {signal.SIGTERM, signal.SIGINT}  # held while the server forks and records a job


def refusal(enabled: bool, executor: str | None, conda: bool, launcher: str) -> str | None:
    """Why a run gets no fork server (None: it gets one). `executor`: Snakemake's executor plugin's name."""
    if not enabled:
        return "the configuration's fork_server is false"
    if executor != "local":
        return f"the {executor} executor runs jobs where the server's socket is not"
    if conda:
        return "under --sdm conda a job's Python is its rule's environment's, not the server's"
    if launcher != "python":
        return f"the {launcher} launcher starts the training processes"
    return platform_problem()


def platform_problem() -> str | None:
    """The server needs Linux's pidfd_open (kernel 5.3) and prctl; elsewhere (macOS) jobs start cold."""
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return f"it needs Linux (pidfd_open, prctl); this is {sys.platform}"
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as error:
        return f"this kernel has no pidfd_open ({error.strerror})"
    return None


def preloaded_modules() -> tuple[str, ...]:
    """Every job verb's module, and what those jobs import later."""
    from flux.verbs import VERBS

    verb_modules = [verb.run.partition(":")[0] for verb in VERBS.values() if verb.is_job]
    return tuple(dict.fromkeys([*verb_modules, *LAZY_IMPORTS]))


# The client: `python -m flux ...` with FLUX_FORK_SERVER set.


def run_in_server(socket_path: str, argv: Sequence[str]) -> int | None:
    """Run `flux argv[1:]` in the fork server; its exit status, or None when the server cannot be reached (the
    caller then runs the job itself). Standard streams, working directory and environment are this process's."""
    closed = [fd for fd in STREAMS if not is_open(fd)]  # before the socket, which would take a closed one's number
    if closed:
        print(f"flux: standard stream(s) {closed} closed: running the job here, not in the fork server", file=sys.stderr)
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(socket_path)
    except OSError as error:
        client.close()
        print(f"flux: fork server {socket_path} not reachable ({error.strerror or error}); running the job here", file=sys.stderr)
        return None
    with client:
        request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        message = HEADER.pack(len(request)) + request
        sent = socket.send_fds(client, [message], list(STREAMS))
        client.sendall(message[sent:])
        reply = b""
        while chunk := client.recv(4096):
            reply += chunk
    if not reply:
        print(f"flux: the fork server {socket_path} ended before the job did", file=sys.stderr)
        return 1
    result = json.loads(reply)
    print(
        f"flux: job ran in the fork server (pid {result['pid']}): exit {result['exit']}, "
        f"{result['cpu_seconds']:.1f} s CPU, peak RSS {result['max_rss_mb']:.0f} MB",
        file=sys.stderr,
    )
    return int(result["exit"])


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# The server.


@dataclass
class Job:
    pid: int
    connection: socket.socket | None  # None once the client has gone


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal that killed the process."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    """The client's request and its three streams; raises OSError or ValueError (having closed what it received)
    for a request that is cut short, late or malformed."""
    connection.settimeout(REQUEST_TIMEOUT_SECONDS)
    data, fds, _, _ = socket.recv_fds(connection, 65536, len(STREAMS))
    try:
        if len(fds) != len(STREAMS):
            raise ConnectionError(f"{len(fds)} of the client's {len(STREAMS)} standard streams arrived")
        data = receive_at_least(connection, data, HEADER.size)
        end = HEADER.size + HEADER.unpack_from(data)[0]
        request = json.loads(receive_at_least(connection, data, end)[HEADER.size : end])
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise
    connection.settimeout(None)
    return request, fds


def receive_at_least(connection: socket.socket, data: bytes, size: int) -> bytes:
    while len(data) < size:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        data += chunk
    return data


def become_job(
    request: dict, fds: list[int], entry: Callable[[Sequence[str]], int | None], inherited: list[int], server: int
) -> None:
    """In the forked child: take the client's streams, directory and environment, run the entry, exit. Never
    returns. `inherited`: the server's descriptors (listener, clients, children), closed first."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent()
        if os.getppid() != server:  # the server died before the line above
            os._exit(1)
        for fd in inherited:
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, DEFERRED_SIGNALS)
        for target, fd in zip(STREAMS, fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115 (the process's own streams, never closed)
        sys.stdout = sys.__stdout__ = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # read TMPDIR again (Snakemake sets it per job)
        sys.argv = list(request["argv"])
        try:
            result = entry(sys.argv[1:])
            code = 0 if result is None else int(result)
        except SystemExit as exit:
            if exit.code is None or isinstance(exit.code, int):
                code = exit.code or 0
            else:
                print(exit.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            sys.excepthook(*sys.exc_info())
            code = 128 + signal.SIGINT
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        # what an interpreter's exit does before it flushes its streams: join the threads the job left running
        # (and run concurrent.futures' exit hooks), then the atexit functions
        threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # the reader of a pipe has gone, or the job closed the stream: nothing left to say there
        os._exit(code & 0xFF)


def die_with_parent() -> None:
    """Linux: SIGKILL this process when the server dies, so that no job runs on without a client to report to."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


class Server:
    """One Python thread, which forks: a lock another thread held at the fork would stay held in the child. The
    pools the preloaded libraries start (OpenBLAS, jemalloc) re-create themselves after a fork, as they do in
    DataLoader workers."""

    def __init__(self, listener: socket.socket, entry: Callable[[Sequence[str]], int | None], parent_pid: int):
        self.listener = listener
        self.entry = entry
        self.parent_pid = parent_pid
        self.selector = selectors.DefaultSelector()
        self.jobs: dict[int, Job] = {}  # pidfd -> job

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, self.accept)
        while os.getppid() == self.parent_pid:
            for key, _ in self.selector.select(PARENT_CHECK_SECONDS):
                key.data(key.fileobj)
        print(f"flux fork server: process {self.parent_pid} has gone; stopping", file=sys.stderr)

    def accept(self, listener: socket.socket) -> None:
        connection, _ = listener.accept()
        try:
            request, fds = receive_request(connection)
        except (OSError, ValueError) as error:
            print(f"flux fork server: bad request ({error})", file=sys.stderr)
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        # a SIGTERM between the fork and the job's record would stop the server without stopping the job
        signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
        server = os.getpid()
        try:
            pid = os.fork()
            if pid == 0:
                connections = [job.connection.fileno() for job in self.jobs.values() if job.connection]
                inherited = [self.selector.fileno(), self.listener.fileno(), connection.fileno(), *connections, *self.jobs]
                become_job(request, fds, self.entry, inherited, server)
            for fd in fds:
                os.close(fd)
            try:
                os.setpgid(pid, pid)  # as the child does: whichever runs first, the group exists before a kill
            except OSError:
                pass  # the child has set it already, or has exited (handled when its pidfd turns readable)
            pidfd = os.pidfd_open(pid)
            self.jobs[pidfd] = Job(pid, connection)
            self.selector.register(pidfd, selectors.EVENT_READ, self.finished)
            self.selector.register(connection, selectors.EVENT_READ, self.client_gone)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, DEFERRED_SIGNALS)

    def client_gone(self, connection: socket.socket) -> None:
        """The client sends nothing after its request: readable means it closed (was killed): kill its job."""
        job = next((job for job in self.jobs.values() if job.connection is connection), None)
        if job is None:
            return  # the job ended in the same pass, and `finished` has answered and closed the connection
        self.selector.unregister(connection)
        connection.close()
        job.connection = None
        kill_group(job.pid, signal.SIGTERM)

    def finished(self, pidfd: int) -> None:
        job = self.jobs.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        kill_group(job.pid, signal.SIGKILL)  # what the job left behind; before the wait, which frees its id
        _, status, usage = os.wait4(job.pid, 0)
        if job.connection is None:
            return
        reply = {
            "pid": job.pid,
            "exit": exit_code(status),
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_mb": usage.ru_maxrss / 1024,
        }
        self.selector.unregister(job.connection)
        try:
            job.connection.sendall(json.dumps(reply).encode())
        except OSError:
            pass  # the client went away as its job ended
        job.connection.close()

    def stop(self) -> None:
        """Terminate the running jobs (killed after 10 s) and reap them."""
        for job in self.jobs.values():
            kill_group(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for job in self.jobs.values():
            while time.monotonic() < deadline and os.waitid(os.P_PID, job.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                time.sleep(0.05)
            kill_group(job.pid, signal.SIGKILL)
            os.waitpid(job.pid, 0)


def kill_group(pid: int, sig: int) -> None:
    """Signal a job's process group; a group that no longer exists is what the caller wants."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def serve(socket_path: Path, parent_pid: int, preload: Sequence[str], entry: str) -> None:
    """Import `preload`, then listen on `socket_path` until the process `parent_pid` ends or SIGTERM. The socket
    appears only once the server listens (bound under a temporary name, then renamed); on the way out the server
    removes it, and its folder if that is then empty (`start` makes one for it)."""
    started = time.monotonic()
    for module in preload:
        importlib.import_module(module)
    from flux.verbs import resolve

    entry_function = resolve(entry)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    binding = socket_path.with_name(socket_path.name + ".binding")
    binding.unlink(missing_ok=True)
    listener.bind(str(binding))
    listener.listen(64)
    os.replace(binding, socket_path)
    print(
        f"flux fork server: {len(preload)} modules imported in {time.monotonic() - started:.1f} s; listening on {socket_path}",
        file=sys.stderr,
    )
    sys.stderr.flush()
    server = Server(listener, entry_function, parent_pid)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server.serve()
    finally:
        server.stop()
        listener.close()
        socket_path.unlink(missing_ok=True)
        try:
            socket_path.parent.rmdir()
        except OSError:
            pass  # not empty: not the server's own folder


# Starting and stopping it (the Snakefile's onstart / onsuccess / onerror).


@dataclass
class RunningServer:
    process: object  # subprocess.Popen
    directory: Path  # the socket's, removed with the server
    log: Path

    @property
    def socket(self) -> str:
        return str(self.directory / "socket")

    def stop(self) -> None:
        import shutil
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start(log: Path, python: str = sys.executable, preload: Sequence[str] | None = None, entry: str = ENTRY) -> RunningServer:
    """Start a server as a child of this process and wait until it listens; its output goes to `log`. It stops
    with this process (or `RunningServer.stop`). Raises RuntimeError, naming the log, if it cannot start."""
    import subprocess

    directory = Path(tempfile.mkdtemp(prefix="flux-fork-"))  # short: a socket path has at most 107 bytes
    socket_path = directory / "socket"
    command = [python, "-m", "flux.forkserver", "--socket", str(socket_path), "--parent", str(os.getpid()), "--entry", entry]
    if preload is not None:
        command += ["--preload", ",".join(preload)]
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}
    with open(log, "ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=environment)
    running = RunningServer(process, directory, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"the fork server did not start (exit status {process.returncode}); see {log}")
        time.sleep(0.1)
    return running


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flux.forkserver", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, type=Path, help="the Unix socket to listen on")
    parser.add_argument("--parent", required=True, type=int, help="stop when this process ends")
    parser.add_argument("--entry", default=ENTRY, help="module:function a job runs with the client's arguments")
    parser.add_argument("--preload", help="comma-separated modules to import first (default: every job verb's, and theirs)")
    arguments = parser.parse_args(argv)
    preload = preloaded_modules() if arguments.preload is None else tuple(filter(None, arguments.preload.split(",")))
    serve(arguments.socket, arguments.parent, preload, arguments.entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
