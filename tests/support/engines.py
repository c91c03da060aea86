"""Real container engines for the tests: Debian's Podman and Docker, each with private state.

Neither touches the host's engines: Podman runs with its own ``--root``,
``--runroot``, ``--tmpdir`` and a containers.conf of its own (runc, cgroupfs,
ulimits the hard limits here allow, no events, its network config dir); Docker
is a ``dockerd`` of its own (``--data-root``, ``--exec-root``, its socket,
pidfile and containerd namespace, ``--iptables=false --bridge=none``), its
containers on ``--network none``.  Both use the ``vfs`` storage driver (a
container's root is a plain directory: no overlay mounts to leave behind).
Images come from no registry: a tar of a tiny root file system (busybox-static's
binary and a few links) is imported.

Everything lives under a directory outside the session's temp dirs (made with
mkdtemp in /tmp) so that the per-test leak check does not count the engines'
files; :meth:`Engine.close` removes containers, pods, images, the daemon, the
mounts under that directory, the cgroups the engine made and the directory, and
:func:`host_residue` lists what an engine could have left on the host.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from support.processes import ppid_map

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "sleep", "cat", "ls", "ps", "true")
IMAGE = "localhost/nsctl-test:1"
#: Cgroup directories the engines make (cgroupfs driver), under each hierarchy.
CGROUP_NAMES = ("docker", "libpod_parent")
#: Host paths Podman creates on first use whatever --root says (removed if we made them).
PODMAN_HOST_PATHS = ("/run/runc", "/run/containers", "/var/lib/containers")
# dockerd and its containerd make these whatever --exec-root says (the shims' sockets
# live in /run/containerd/s); another Docker may be using them.
DOCKER_HOST_PATHS = ("/run/containerd", "/run/docker")


class EngineUnavailable(Exception):
    """The engine cannot run here: the reason the tests skip."""


def rootfs_tar(path: Path) -> Path:
    """A tar of a tiny root file system: busybox-static and links to it, /bin/pause."""
    if not os.path.exists(BUSYBOX):
        raise EngineUnavailable(f"{BUSYBOX} missing (apt-get install busybox-static)")
    with open(BUSYBOX, "rb") as f:
        if b"ld-linux" in f.read(1 << 16):
            raise EngineUnavailable(f"{BUSYBOX} is not static (apt-get install busybox-static)")
    with tarfile.open(path, "w") as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for name in APPLETS:
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        script = b"#!/bin/sh\nexec sleep 1000000\n"
        info = tarfile.TarInfo("bin/pause")
        info.mode, info.size = 0o755, len(script)
        import io

        tar.addfile(info, io.BytesIO(script))
    return path


def _cgroup_roots() -> list[str]:
    base = "/sys/fs/cgroup"
    roots = [base]
    try:
        for entry in os.listdir(base):
            p = os.path.join(base, entry)
            if os.path.isdir(p) and not os.path.islink(p) and \
                    os.path.exists(os.path.join(p, "cgroup.procs")):
                roots.append(p)
    except OSError:
        pass
    return roots


def engine_cgroups(names: tuple[str, ...] = CGROUP_NAMES) -> set[str]:
    """The engines' cgroup directories (of ``names``) that exist now."""
    return {os.path.join(r, n) for r in _cgroup_roots() for n in names
            if os.path.isdir(os.path.join(r, n))}


def _remove_cgroup_tree(path: str, grace: float = 5.0) -> None:
    """Remove the empty cgroups of a tree, deepest first; one still in use (its last
    process on its way out, or another engine's, when two test runs share the host)
    is given ``grace`` seconds in all, then left."""
    deadline = time.monotonic() + grace
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda t: -len(t[0])):
        while True:
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)


def _remove_empty_dirs(path: str) -> None:
    """The empty directories of a tree, deepest first (what another engine still uses
    stays)."""
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def other_podman_running(base: str) -> bool:
    """Whether a Podman other than the one under ``base`` has containers here (another
    test run on this host): the host paths Podman shares are then not ours to judge."""
    for pid in ppid_map():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"/usr/bin/conmon\0") and base.encode() not in cmd:
            return True
    return False


def _mounts_under(root: str) -> list[str]:
    out = []
    text = Path("/proc/self/mountinfo").read_bytes().decode("utf-8", "surrogateescape")
    for line in text.splitlines():   # (others' tests mount at names that are not UTF-8)
        point = line.split()[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/"):
            out.append(point)
    return out


_MONITORS = ("conmon", "containerd-shim", "runc", "docker", "podman")


def monitors() -> set[int]:
    """The engines' monitors whose parent this pytest process is (see reap_orphans)."""
    me = os.getpid()
    out = set()
    for pid, ppid in ppid_map().items():
        if ppid == me:
            try:
                comm = Path(f"/proc/{pid}/comm").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if comm.startswith(_MONITORS):
                out.add(pid)
    return out


def reap_orphans(wait: float = 0.0, keep: set[int] | frozenset[int] = frozenset()) -> None:
    """Reap the engines' monitors (conmon, containerd-shim) that exited: they daemonize,
    so this pytest process (a child subreaper) is their parent.  With ``wait``, also
    wait up to that many seconds for those still running but ``keep`` to exit (a
    container just removed: its conmon exits a moment after ``podman rm`` returns)."""
    me = os.getpid()
    deadline = time.monotonic() + wait
    while True:
        running = 0
        for pid, ppid in ppid_map().items():
            if ppid != me:
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "surrogateescape")
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            if not comm.startswith(_MONITORS):
                continue
            if stat[stat.rindex(")") + 2] == "Z":
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            elif pid not in keep:
                running += 1
        if not running or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def host_residue(engine: Engine) -> list[str]:
    """What ``engine`` could have left on the host once closed: processes and mounts
    naming its directory, the directory, cgroups it made (the fixtures check this list
    is empty at the end)."""
    base = engine.base
    left = [f"cgroup {c}" for c in
            sorted(engine_cgroups(engine.cgroup_names) - engine.cgroups_before)]
    for pid in ppid_map():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(base.encode() in part for part in cmd):
            left.append(f"process {pid}: {b' '.join(cmd)[:120]!r}")
    left.extend(f"mount {m}" for m in _mounts_under(base))
    if isinstance(engine, Podman) and not other_podman_running(base):
        left.extend(f"host path {p}" for p in PODMAN_HOST_PATHS
                    if p not in engine.host_paths_before and os.path.lexists(p))
    if isinstance(engine, Docker):
        left.extend(f"host path {p}" for p in DOCKER_HOST_PATHS
                    if p not in engine.host_paths_before and os.path.lexists(p))
    if os.path.lexists(base):
        left.append(f"directory {base}")
    return left


class Engine:
    """One engine with private state under ``self.base`` (see the module)."""

    name = ""
    cgroup_names: tuple[str, ...] = ()   # the cgroup directories this engine makes

    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix=f"nsctl-engines-{self.name}-", dir="/tmp")
        self.cgroups_before = engine_cgroups(self.cgroup_names)
        self.started = time.monotonic()
        self.startup = 0.0

    def env(self) -> dict[str, str]:
        """The environment variables that point nsctl at this engine."""
        raise NotImplementedError

    def run(self, *args: str, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=self.cli_env())
        if check and proc.returncode != 0:
            raise AssertionError(f"{args}: {proc.returncode} {proc.stderr.strip()[-800:]}")
        return proc

    def argv(self, *args: str) -> list[str]:
        raise NotImplementedError

    def cli_env(self) -> dict[str, str]:
        return dict(os.environ)

    def container_pid(self, name: str) -> int:
        return int(self.run("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())

    def remove_all(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        try:
            self.remove_all()
        finally:
            self.stop_daemon()
            # The monitors (conmon, shims) and what they run on exit (Podman's
            # `container cleanup`) may outlive the daemon by a moment, and may make the
            # host paths again: they are waited for (then killed) before those go.
            _wait_for_exit(self.base, 20)
            _kill_left_behind(self.base)
            reap_orphans()
            for point in sorted(_mounts_under(self.base), key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True)
            for path in engine_cgroups(self.cgroup_names) - self.cgroups_before:
                _remove_cgroup_tree(path)
            self.remove_host_paths()
            shutil.rmtree(self.base, ignore_errors=True)

    def stop_daemon(self) -> None:
        pass

    def remove_host_paths(self) -> None:
        """Remove what the engine made outside ``base`` whatever its options say."""


class Podman(Engine):
    name = "podman"
    cgroup_names = ("libpod_parent",)

    def __init__(self) -> None:
        if shutil.which("podman") is None or shutil.which("runc") is None:
            raise EngineUnavailable("podman or runc not installed (apt-get install podman runc)")
        self.host_paths_before = {p for p in PODMAN_HOST_PATHS if os.path.lexists(p)}
        super().__init__()
        b = self.base
        self.root, self.runroot, self.tmpdir = f"{b}/root", f"{b}/run", f"{b}/tmp"
        self.conf = f"{b}/containers.conf"
        Path(self.conf).write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            "[network]\n"
            f'network_config_dir = "{b}/networks"\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "none"\n')
        self.storage_conf = f"{b}/storage.conf"
        Path(self.storage_conf).write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.root}"\nrunroot = "{self.runroot}"\n')
        self.service: subprocess.Popen | None = None
        try:
            self.run("import", str(rootfs_tar(Path(b) / "rootfs.tar")), IMAGE)
        except Exception as exc:
            self.close()
            raise EngineUnavailable(f"podman cannot import an image: {exc}") from None

    def cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CONTAINERS_CONF=self.conf, CONTAINERS_STORAGE_CONF=self.storage_conf,
                   CONTAINERS_REGISTRIES_CONF="/dev/null")
        return env

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--root", self.root, "--runroot", self.runroot, "--tmpdir",
                self.tmpdir, "--storage-driver", "vfs", *args]

    def env(self) -> dict[str, str]:
        return {"NSCTL_PODMAN_ROOT": self.root,
                "NSCTL_PODMAN_SOCKET": f"{self.base}/podman.sock"}

    def start_service(self) -> None:
        """``podman system service`` on ``podman.sock`` (its API socket)."""
        sock = f"{self.base}/podman.sock"
        self.service = subprocess.Popen(self.argv("system", "service", "--time", "0",
                                                  f"unix://{sock}"),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=self.cli_env())
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if time.monotonic() > deadline or self.service.poll() is not None:
                self.stop_service()
                raise AssertionError("podman system service did not make its socket")
            time.sleep(0.05)

    def stop_service(self) -> None:
        if self.service is not None:
            _stop(self.service, 20)
            self.service = None
            try:
                os.unlink(f"{self.base}/podman.sock")
            except OSError:
                pass
            reap_orphans()

    def rm(self, name: str) -> None:
        self.run("rm", "-f", "-t", "0", name)
        reap_orphans()

    def remove_all(self) -> None:
        self.stop_service()
        self.run("pod", "rm", "-a", "-f", "-t", "0", check=False)
        self.run("rm", "-a", "-f", "-t", "0", check=False)
        self.run("rmi", "-a", "-f", check=False)

    def remove_host_paths(self) -> None:
        # Podman makes these whatever --root says; another Podman may be using them.
        others = other_podman_running(self.base)
        for path in PODMAN_HOST_PATHS:
            if path not in self.host_paths_before and os.path.lexists(path):
                if others:
                    _remove_empty_dirs(path)
                else:
                    shutil.rmtree(path, ignore_errors=True)


class Docker(Engine):
    name = "docker"
    cgroup_names = ("docker",)

    def __init__(self) -> None:
        if shutil.which("dockerd") is None:
            raise EngineUnavailable("dockerd not installed (apt-get install docker.io)")
        self.host_paths_before = {p for p in DOCKER_HOST_PATHS if os.path.lexists(p)}
        # docker.io's client talks to its own daemon; another docker on PATH may not.
        self.client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
        super().__init__()
        b = self.base
        self.sock = f"{b}/docker.sock"
        log = open(f"{b}/dockerd.log", "wb")
        self.daemon: subprocess.Popen | None = subprocess.Popen(
            ["dockerd", "--data-root", f"{b}/data", "--exec-root", f"{b}/exec",
             "-H", f"unix://{self.sock}", "--pidfile", f"{b}/docker.pid",
             "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false",
             "--storage-driver", "vfs", "--containerd-namespace", "nsctl-test",
             "--containerd-plugins-namespace", "nsctl-test-plugins"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        try:
            deadline = time.monotonic() + 30
            while self.run("version", check=False, timeout=10).returncode != 0:
                if time.monotonic() > deadline or self.daemon.poll() is not None:
                    tail = Path(f"{b}/dockerd.log").read_text(errors="replace")[-500:]
                    raise EngineUnavailable(f"dockerd did not start: {tail}")
                time.sleep(0.1)
            self.run("import", str(rootfs_tar(Path(b) / "rootfs.tar")), IMAGE)
        except BaseException:
            self.close()
            raise

    def argv(self, *args: str) -> list[str]:
        return [self.client, "-H", f"unix://{self.sock}", *args]

    def env(self) -> dict[str, str]:
        return {"NSCTL_DOCKER_SOCKET": self.sock}

    def rm(self, name: str) -> None:
        self.run("rm", "-f", name)
        reap_orphans()

    def remove_all(self) -> None:
        if self.daemon is None or self.daemon.poll() is not None:
            return
        ids = self.run("ps", "-aq", check=False).stdout.split()
        if ids:
            self.run("rm", "-f", *ids, check=False)
        self.run("rmi", "-f", IMAGE, check=False)

    def stop_daemon(self) -> None:
        if self.daemon is None:
            return
        _stop(self.daemon, 30)
        self.daemon = None

    def remove_host_paths(self) -> None:
        for path in DOCKER_HOST_PATHS:   # only what this daemon made, and only if empty
            if path not in self.host_paths_before and os.path.lexists(path):
                _remove_empty_dirs(path)


def _wait_for_exit(base: str, seconds: float) -> None:
    """Wait up to ``seconds`` for every process naming ``base`` to exit, reaping the
    monitors among them (what is still there after that is killed by close())."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reap_orphans()
        if not any(_cmd_mentions(p, base) for p in ppid_map()):
            return
        time.sleep(0.1)


def _kill_left_behind(base: str) -> None:
    """SIGKILL what removing the containers and stopping the daemon left running: every
    process naming ``base`` (conmon, shims) and its children (the containers' payload)."""
    parents = ppid_map()
    mine = {pid for pid in parents if _cmd_mentions(pid, base)}
    doomed = mine | {pid for pid, ppid in parents.items() if ppid in mine}
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if doomed:
        time.sleep(0.2)


def _stop(popen: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def _cmd_mentions(pid: int, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
