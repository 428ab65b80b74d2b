"""A throwaway one-node SLURM cluster on this machine, for tests (design section 7).

Debian's ``slurm-wlm`` and ``munge`` (installed with apt-get when ``slurmctld`` is missing)
run as root: a private munged, slurmctld and slurmd, each started here in the foreground
and stopped here by its process id. All their state, spool, logs and sockets lie under a
folder the caller gives; they listen on free ports of 127.0.0.1, so a SLURM that already
runs on the machine is left alone. The node is this machine (``hostname -s``), its CPUs
and memory as slurmd measures them (less a margin), with one GPU whose device file is
/dev/null: ``--gpus=1`` jobs schedule, one at a time. Every finished job is written to
``jobcomp.txt`` (jobcomp/filetxt) and stays in ``scontrol show job`` for an hour
(MinJobAge), where its requested and allocated GPUs show; there is no accounting
(slurmdbd), so no ``sacct``.

The one file outside that folder: the SLURM executor's job step (snakemake-executor-
plugin-slurm-jobstep 0.6.1) drops every ``SLURM_*`` variable, SLURM_CONF included, before
its inner ``srun``, which then reads only the built-in /etc/slurm/slurm.conf. So a copy
of the cluster's slurm.conf is put there for the cluster's lifetime, and only where no
such file exists (one left by an earlier run of this helper that died is replaced). A
lock file serialises clusters of concurrent test runs on one machine.

``ClusterUnavailable`` means SLURM cannot be had here (not Linux, not root, apt-get
failed, another SLURM's slurm.conf in the way, another test's cluster holding the lock
for minutes): callers skip. Any other error is a
failure, raised after stopping whatever was started.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Self

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "squeue", "sbatch", "srun", "scontrol", "scancel", "munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # Debian's built-in client default
LOCK = Path("/tmp/floecast-slurm-test.lock")
MARKER = "# floecast test cluster (tests/slurm_cluster.py); removed when it stops"
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be installed or run on this machine: the test should skip."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}{os.pathsep}{SBIN_PATH}")


def _tail(text: str | bytes | None, n: int = 2000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "").strip()[-n:]


def ensure_installed(timeout: float = 600) -> None:
    """Install slurm-wlm and munge with apt-get where a daemon or client is missing."""
    if not sys.platform.startswith("linux"):
        raise ClusterUnavailable(f"SLURM test cluster needs Linux, not {sys.platform}")
    if all(_which(b) for b in DAEMONS + CLIENTS):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("SLURM is not installed and installing it (apt-get) needs root")
    if not _which("apt-get"):
        raise ClusterUnavailable("SLURM is not installed and there is no apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    deadline = time.monotonic() + timeout
    proc = None
    for update_first in (False, True):  # the package lists may be missing or stale: update and retry once
        try:
            if update_first:
                subprocess.run(
                    ["apt-get", "-o", "DPkg::Lock::Timeout=120", "update", "-q"],
                    env=env,
                    capture_output=True,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
            proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise ClusterUnavailable(f"apt-get did not finish in {timeout:.0f} s (no network to the mirror?)") from exc
        if proc.returncode == 0 and all(_which(b) for b in DAEMONS + CLIENTS):
            return
    detail = _tail(proc.stderr or proc.stdout, 800) if proc is not None else ""
    raise ClusterUnavailable(f"apt-get could not install {' '.join(PACKAGES)}: {detail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None  # loaded before any fork


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL."""
    if _LIBC is not None:
        _LIBC.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (os.environ) without the variables through which an enclosing SLURM job or
    the user's own SLURM settings would leak into the test cluster's commands."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SNAKEMAKE_SLURM_")):
            del env[key]
    return env


class SlurmCluster:
    """One controller and one node on this machine; state, logs and sockets under ``root``."""

    def __init__(
        self,
        root: Path,
        partitions: tuple[str, ...] = ("debug",),
        min_job_age_s: int = 3600,
        lock_timeout: float = 300,
        start_timeout: float = 60,
    ) -> None:
        self.root = Path(root)
        self.partitions = partitions  # the first is the default partition; each holds the node
        self.min_job_age_s = min_job_age_s
        self.lock_timeout = lock_timeout
        self.start_timeout = start_timeout
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc" / "slurm.conf"
        self.jobcomp_path = self.root / "jobcomp.txt"
        self.cpus = 0
        self.real_memory_mb = 0
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock_fd: int | None = None
        self._system_conf_written = False
        self._system_conf_dir_made = False
        self._socket_dir: Path | None = None
        self._made_socket_dir = False
        self._hardware: dict[str, str] = {}

    # -- the environment the cluster's clients need -------------------------------------

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = clean_env(base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{env.get('PATH', '')}{os.pathsep}{SBIN_PATH}"
        return env

    def run(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {_tail(proc.stderr or proc.stdout)}")
        return proc

    # -- start ----------------------------------------------------------------------------

    def start(self) -> Self:
        ensure_installed()
        if os.geteuid() != 0:
            raise ClusterUnavailable("slurmd runs jobs as their users and must run as root")
        self._acquire_lock()
        try:
            self._check_system_conf()
            self._layout()
            self._start_munged()
            self._write_conf()
            self._start("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf)])
            self._wait(lambda: "UP" in self.run("scontrol", "ping", check=False).stdout, "slurmctld to answer")
            self._start("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
            self._wait(self._node_idle, f"node {self.node} to be idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _acquire_lock(self) -> None:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise ClusterUnavailable(f"another test's SLURM cluster held {LOCK} for {self.lock_timeout:.0f} s") from None
                time.sleep(1)
        self._lock_fd = fd

    def _check_system_conf(self) -> None:
        if SYSTEM_CONF.exists():
            first = SYSTEM_CONF.read_text(errors="replace").partition("\n")[0]
            if first != MARKER:  # a real SLURM's configuration: never touched
                raise ClusterUnavailable(
                    f"{SYSTEM_CONF} belongs to another SLURM; the test cluster needs that path for "
                    "the executor's inner srun (its job step drops SLURM_CONF) and leaves it alone"
                )
            # else: left by a test cluster whose process died (we hold the lock): replaced below

    def _layout(self) -> None:
        for sub in ("etc", "state", "spool", "log", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        (self.root / "munge").chmod(0o700)
        # a unix socket path has at most 107 bytes: a deep pytest basetemp gets a short folder
        self._socket_dir = self.root / "munge"
        if len(str(self._socket_dir / "munge.socket")) > 100:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="fcslurm-"))
            self._made_socket_dir = True
        hw = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30)
        fields = dict(re.findall(r"(\w+)=(\S+)", hw.stdout))
        if hw.returncode != 0 or "CPUs" not in fields or "RealMemory" not in fields:
            raise RuntimeError(f"slurmd -C failed: {_tail(hw.stderr or hw.stdout)}")
        self.cpus = int(fields["CPUs"])
        self._hardware = {k: fields[k] for k in ("SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore") if k in fields}
        total = int(fields["RealMemory"])
        self.real_memory_mb = total - max(512, total // 20)  # the margin keeps the node from being drained

    @property
    def munge_socket(self) -> Path:
        assert self._socket_dir is not None
        return self._socket_dir / "munge.socket"

    def _start(self, name: str, argv: list[str | None]) -> None:
        out = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - kept open by the child
        try:
            self._procs[name] = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads start daemons here
                env=self.env(),
            )
        finally:
            out.close()

    def _start_munged(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._start(
            "munged",
            [
                _which("munged"),
                "--foreground",
                "--force",  # root, and a socket folder only root can enter: fine for a test
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
            ],
        )

        def answers() -> bool:
            if not self.munge_socket.exists():
                return False
            enc = subprocess.run([_which("munge"), "-n", "-S", str(self.munge_socket)], capture_output=True, timeout=10)
            return enc.returncode == 0

        self._wait(answers, "munged to answer")

    def _write_conf(self) -> None:
        r = self.root
        hw = " ".join(f"{k}={v}" for k, v in self._hardware.items())
        lines = [
            MARKER,
            f"ClusterName=floecasttest{os.getpid()}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            f"PlugStackConfig={r / 'etc' / 'plugstack.conf'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "MailProg=/bin/true",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ProctrackType=proctrack/linuxproc",  # cgroups are not usable in every container
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_path}",
            f"MinJobAge={self.min_job_age_s}",  # finished jobs stay in squeue/scontrol
            "ReturnToService=2",
            "KillWait=5",
            "GresTypes=gpu",
            f"NodeName={self.node} NodeHostname={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} {hw} "
            f"RealMemory={self.real_memory_mb} Gres=gpu:1 State=UNKNOWN",
        ]
        for i, name in enumerate(self.partitions):
            default = "YES" if i == 0 else "NO"
            lines.append(f"PartitionName={name} Nodes={self.node} Default={default} MaxTime=INFINITE State=UP")
        text = "\n".join(lines) + "\n"
        self.conf.write_text(text)
        (r / "etc" / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")
        (r / "etc" / "plugstack.conf").write_text("")
        if not SYSTEM_CONF.parent.exists():
            SYSTEM_CONF.parent.mkdir(parents=True)
            self._system_conf_dir_made = True
        SYSTEM_CONF.write_text(text)  # byte for byte the same: see the module's docstring
        self._system_conf_written = True

    def _node_idle(self) -> bool:
        proc = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%t", check=False)
        return proc.returncode == 0 and proc.stdout.split() and all(s == "idle" for s in proc.stdout.split())

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"timed out after {self.start_timeout:.0f} s waiting for {what}:\n{self.logs()}")

    def logs(self, n: int = 1500) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name}\n{_tail(path.read_text(errors='replace'), n)}")
        return "\n".join(parts)

    # -- what the cluster saw -----------------------------------------------------------

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still holds (MinJobAge), as ``scontrol -d -o show job``
        fields: JobState, ExitCode, Partition, Comment, TresPerJob (requested, e.g.
        ``gres:gpu:1``), JOB_GRES (allocated, e.g. ``gpu:1``), StartTime, EndTime, ..."""
        out = self.run("scontrol", "-d", "-o", "show", "job").stdout
        return [_fields(line) for line in out.splitlines() if line.startswith("JobId=")]

    def jobcomp(self) -> list[dict[str, str]]:
        """Every finished job as jobcomp/filetxt wrote it."""
        if not self.jobcomp_path.exists():
            return []
        return [_fields(line) for line in self.jobcomp_path.read_text().splitlines() if line.startswith("JobId=")]

    # -- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel the cluster's jobs, stop the daemons started here, remove the slurm.conf
        copy, release the lock. Safe to call twice and after a failed start."""
        try:
            if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
                self._cancel_jobs()
            for name in ("slurmd", "slurmctld", "munged"):
                proc = self._procs.pop(name, None)
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
        finally:
            if self._system_conf_written:
                with contextlib.suppress(OSError):
                    if SYSTEM_CONF.read_text(errors="replace").partition("\n")[0] == MARKER:
                        SYSTEM_CONF.unlink()
                self._system_conf_written = False
            if self._system_conf_dir_made:
                with contextlib.suppress(OSError):
                    SYSTEM_CONF.parent.rmdir()
                self._system_conf_dir_made = False
            if self._made_socket_dir and self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
                self._made_socket_dir = False
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def _cancel_jobs(self, timeout: float = 30) -> None:
        active = "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.run("squeue", "-h", "-t", active, "-o", "%i", check=False)
            ids = proc.stdout.split()
            if proc.returncode != 0 or not ids:
                return
            self.run("scancel", *ids, check=False)
            time.sleep(0.5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _fields(line: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in line.split() if "=" in tok)


def slurm_time(value: str) -> datetime:
    return datetime.fromisoformat(value)
