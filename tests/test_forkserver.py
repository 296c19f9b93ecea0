"""flux.forkserver on a real server process: what a forked job gets of its client, its exit status, what happens
when the client or the server's parent goes away, and the fall-back to a cold start."""

import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flux import forkserver
from tests.paths import REPO

ENTRY = "tests.forkserver_jobs:job"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server importing nothing first (its jobs are tests/forkserver_jobs.py's), as the Snakefile starts one."""
    running = forkserver.start(tmp_path_factory.mktemp("forkserver") / "server.log", preload=[], entry=ENTRY)
    yield running
    running.stop()


def client(server_socket, *arguments, **options):
    """`python -m flux ARGUMENTS` as a rule's shell command runs it, with the server's socket in its environment."""
    environment = {**os.environ, forkserver.SOCKET_VARIABLE: server_socket, **options.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "flux", *arguments], env=environment, capture_output=True, text=True, timeout=60, **options
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(predicate, seconds=15.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_forked_job_gets_the_clients_arguments_directory_environment_and_streams(server, tmp_path):
    result = client(
        server.socket, "echo", "a b", "--x", cwd=tmp_path, input="from stdin\n", env={"FORKSERVER_TEST_VARIABLE": "42"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"cwd={tmp_path}", "variable=42", "stdin=from stdin", "argv=['echo', 'a b', '--x']"]
    lines = result.stderr.splitlines()
    assert lines[0] == "to stderr"
    assert lines[-1].startswith("flux: job ran in the fork server (pid ") and ": exit 0, " in lines[-1]
    assert f"(pid {os.getpid()})" not in lines[-1]


@pytest.mark.parametrize(
    ("arguments", "status", "message"),
    [(["exit", "3"], 3, None), (["return", "2"], 2, None), (["raise"], 1, "ValueError: raised in the job")],
)
def test_the_client_exits_with_the_jobs_status(server, arguments, status, message):
    result = client(server.socket, *arguments, cwd=REPO)
    assert result.returncode == status
    assert f": exit {status}, " in result.stderr
    if message:
        assert message in result.stderr and "Traceback" in result.stderr


def test_a_killed_client_takes_its_job_down(server, tmp_path):
    """Snakemake cancels a job by killing its shell command: the job in the server must not run on."""
    pid_file = tmp_path / "pid"
    environment = {**os.environ, forkserver.SOCKET_VARIABLE: server.socket}
    process = subprocess.Popen([sys.executable, "-m", "flux", "sleep", str(pid_file)], env=environment, cwd=REPO)
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text())
    job = int(pid_file.read_text())
    assert job != process.pid and alive(job)
    process.kill()
    process.wait()
    assert wait_until(lambda: not alive(job)), "the job outlived its client"
    assert client(server.socket, "exit", "0", cwd=REPO).returncode == 0  # the server serves on


def test_a_client_without_its_streams_runs_cold_and_a_broken_request_leaves_the_server_serving(server, tmp_path):
    """A shell can close a command's stdin (`<&-`): that job starts cold. A client that connects and goes away
    before its request (killed at that moment) costs the server nothing but a line in its log."""
    result = client(server.socket, "flops", "--model", "fluxvit_s", "--tokens", "2048", cwd=REPO, preexec_fn=lambda: os.close(0))
    assert result.returncode == 0 and "total" in result.stdout
    assert "standard stream(s) [0] closed: running the job here" in result.stderr
    descriptors = len(os.listdir(f"/proc/{server.process.pid}/fd"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as broken:  # gone before its request
        broken.connect(server.socket)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as cut:  # its streams, then half its request
        cut.connect(server.socket)
        socket.send_fds(cut, [forkserver.HEADER.pack(100) + b"{"], [0, 1, 2])
    assert client(server.socket, "exit", "0", cwd=REPO).returncode == 0
    log = server.log.read_text()
    assert "0 of the client's 3 standard streams arrived" in log and "closed the connection mid-request" in log
    assert len(os.listdir(f"/proc/{server.process.pid}/fd")) == descriptors  # the cut request's streams closed


def test_a_job_dies_with_its_server_and_its_client_fails(tmp_path):
    """The server killed (out of memory, say): no job may run on with nobody to report its end to Snakemake."""
    running = forkserver.start(tmp_path / "server.log", preload=[], entry=ENTRY)
    try:
        pid_file = tmp_path / "pid"
        environment = {**os.environ, forkserver.SOCKET_VARIABLE: running.socket}
        process = subprocess.Popen(
            [sys.executable, "-m", "flux", "sleep", str(pid_file)], env=environment, cwd=REPO, stderr=subprocess.PIPE, text=True
        )
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text())
        job = int(pid_file.read_text())
        running.process.kill()
        assert wait_until(lambda: not alive(job)), "the job outlived its server"
        assert process.wait(timeout=30) == 1
        assert "ended before the job did" in process.stderr.read()
    finally:
        running.stop()


def test_the_server_loads_its_libraries_as_a_one_thread_job(server):
    """BLAS and OpenMP read their thread counts when they load, in the server: Snakemake's values for a job of
    one thread (snakemake.shell), as the embedded default's jobs have."""
    environment = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{server.process.pid}/environ").read_text().split("\0") if "=" in entry
    )
    assert all(environment[name] == "1" for name in forkserver.THREAD_VARIABLES)


def test_an_unreachable_server_means_a_cold_start(tmp_path):
    result = client(str(tmp_path / "no-socket"), "flops", "--model", "fluxvit_s", "--tokens", "2048", cwd=REPO)
    assert result.returncode == 0 and "total" in result.stdout
    assert "not reachable" in result.stderr and "running the job here" in result.stderr


def test_the_server_stops_with_the_process_that_started_it(tmp_path):
    """Snakemake killed (no onsuccess / onerror): its server must not outlive it."""
    starter = (
        "import sys; from pathlib import Path; from flux import forkserver; "
        f"s = forkserver.start(Path({str(tmp_path / 'log')!r}), preload=[], entry={ENTRY!r}); "
        "print(s.process.pid, s.socket, flush=True)"
    )
    result = subprocess.run([sys.executable, "-c", starter], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    server_pid, socket_path = result.stdout.split()
    assert wait_until(lambda: not Path(socket_path).parent.exists()), "the server outlived its parent"
    assert "has gone; stopping" in (tmp_path / "log").read_text()
    assert wait_until(lambda: not alive(int(server_pid)) or zombie(int(server_pid)))


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return False


def test_a_server_that_cannot_start_names_its_log(tmp_path):
    log = tmp_path / "server.log"
    with pytest.raises(RuntimeError, match=str(log)):
        forkserver.start(log, preload=["flux.no_such_module"], entry=ENTRY)
    assert "No module named 'flux.no_such_module'" in log.read_text()


@pytest.mark.parametrize(
    ("enabled", "executor", "conda", "launcher", "reason"),
    [
        (True, "local", False, "python", None),
        (False, "local", False, "python", "fork_server is false"),
        (True, "slurm", False, "python", "the slurm executor"),
        (True, "local", True, "python", "--sdm conda"),
        (True, "local", False, "torchrun", "the torchrun launcher"),
    ],
)
def test_only_local_runs_of_python_jobs_get_a_server(enabled, executor, conda, launcher, reason):
    refusal = forkserver.refusal(enabled, executor, conda, launcher)
    assert refusal is None if reason is None else reason in refusal


def test_a_platform_without_pidfd_gets_no_server(monkeypatch):
    """macOS (a laptop running the embedded default): no pidfd_open, no prctl; its jobs start cold."""
    assert forkserver.platform_problem() is None  # Linux here
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "needs Linux" in forkserver.refusal(True, "local", False, "python")


def test_the_default_preloads_every_job_verbs_module():
    from flux.verbs import VERBS

    modules = forkserver.preloaded_modules()
    assert {verb.run.partition(":")[0] for verb in VERBS.values() if verb.is_job} <= set(modules)
    assert "torch._dynamo" in modules and "timm.optim" in modules


def test_a_clients_end_seen_after_its_jobs_end_is_ignored():
    """A client that goes away as its job ends: one selector pass can hold both events; the job's end, handled
    first, answers and closes the connection, and the connection's event then finds nothing to do."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        server = forkserver.Server(listener, entry=None, parent_pid=os.getppid())
        connection, client_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pidfd = os.pidfd_open(pid)
        server.jobs[pidfd] = forkserver.Job(pid, connection)
        server.selector.register(pidfd, selectors.EVENT_READ, server.finished)
        server.selector.register(connection, selectors.EVENT_READ, server.client_gone)
        client_end.close()
        assert wait_until(lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None)
        assert len(server.selector.select(5)) == 2
        server.finished(pidfd)
        server.client_gone(connection)
        assert not server.jobs and not server.selector.get_map()
        server.selector.close()
