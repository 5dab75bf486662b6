"""Services the batch tests bring up themselves (not a test): sshd on
127.0.0.1 and a one-node Slurm cluster (munged, slurmctld, slurmd) on
loopback, as plain background processes with every file in the test's
temporary folder, on free ports, so that they run on a fresh machine and
beside anyone else's daemons. Everything started is stopped by its PID
(TERM, then KILL), also when the test fails or is killed with SIGTERM,
SIGHUP or SIGINT (they become SystemExit, so `finally` blocks run).
"""
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time

import canopytest as ct

SBIN = ("/usr/sbin", "/sbin")


def exit_on_signals():
    """SIGTERM, SIGHUP and SIGINT raise SystemExit: the caller's `finally`
    blocks stop the services."""
    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)


def program(name, package):
    """Absolute path of a program; a hard error (99) naming its package when
    it is not installed (scripts/install-deps installs it)."""
    p = shutil.which(name) or next((os.path.join(d, name) for d in SBIN
                                    if os.access(os.path.join(d, name), os.X_OK)), None)
    if not p:
        print("ERROR: %s is not installed (Debian package %s; sh scripts/install-deps)"
              % (name, package))
        raise SystemExit(ct.HARD_ERROR)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    """True while process pid exists and is not a zombie (/proc/PID/stat:
    a stopped daemon can stay a zombie for seconds, where kill -0 succeeds)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_pid(pid, grace=5.0):
    """TERM, then KILL after `grace` seconds, a process that is not our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        t = time.monotonic() + grace
        while alive(pid) and time.monotonic() < t:
            time.sleep(0.05)
        if not alive(pid):
            return


def wait_until(what, check, timeout, log=None, procs=()):
    """Polls check() until true; fails naming `what` (with the tail of a log
    file) after `timeout` seconds or when one of procs has exited."""
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if check():
            return
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            break
        time.sleep(0.1)
    tail = ""
    if log and os.path.exists(log):
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-15:])
    raise AssertionError("%s: not ready after %.0f s%s\n%s" % (
        what, timeout, "".join("; %s exited %s" % (p.args[0], p.returncode)
                               for p in procs if p.poll() is not None), tail))


class Services:
    """Background processes, stopped by PID in the reverse order of start."""

    def __init__(self):
        self.procs = []

    def start(self, args, log, env=None):
        with open(log, "ab") as f:
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self):
        while self.procs:
            p = self.procs.pop()
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            # Whatever it left in its own session (sshd's per-connection
            # children): the group is the PID we started.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_sshd(svc, folder, hosts=("canopy-a", "canopy-b")):
    """sshd on 127.0.0.1 (free port) for the current user with a temporary
    host key and authorised key. Returns the ssh_config path, in which each
    of `hosts` names it. sshd's log is folder/sshd.log.

    The client sends SHLVL=1: Debian's bash, run by sshd as the login shell,
    then skips the user's ~/.bashrc, which on a developer's machine may take
    seconds (pyenv init) or print text, and is no part of the test. In a
    sanitizer build (./configure --enable-sanitizers) the sanitizers'
    settings travel too (SendEnv/AcceptEnv), so that a canopy run over ssh
    reports like a local one."""
    sshd = program("sshd", "openssh-server")
    keygen = program("ssh-keygen", "openssh-client")
    ssh = program("ssh", "openssh-client")
    os.makedirs(folder)
    user = getpass.getuser()
    for k in ("host_key", "client_key"):
        ct.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "canopy-test", "-f",
                os.path.join(folder, k)])
    shutil.copy(os.path.join(folder, "client_key.pub"), os.path.join(folder, "authorized_keys"))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
    log = os.path.join(folder, "sshd.log")
    cfg = os.path.join(folder, "ssh_config")
    for attempt in range(3):
        port = free_port()
        conf = os.path.join(folder, "sshd_config")
        with open(conf, "w") as f:
            f.write("""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
AcceptEnv SHLVL ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
""".format(port=port, d=folder, user=user))
        ct.run([sshd, "-t", "-f", conf])
        with open(cfg, "w") as f:
            f.write("""Host {hosts}
    HostName 127.0.0.1
    Port {port}
    User {user}
    IdentityFile {d}/client_key
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile {d}/known_hosts
    BatchMode yes
    LogLevel ERROR
    SetEnv SHLVL=1
    SendEnv ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
""".format(hosts=" ".join(hosts), port=port, user=user, d=folder))
        p = svc.start([sshd, "-D", "-e", "-f", conf], log)

        def logged_in():
            return subprocess.run([ssh, "-F", cfg, hosts[0], "true"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=10).returncode == 0
        try:
            wait_until("sshd on 127.0.0.1:%d" % port, logged_in, 15, log, [p])
            return cfg
        except AssertionError:
            if p.poll() is None or attempt == 2:  # running but no login, or out of tries
                raise
            # The port was taken in between: another one.
    raise AssertionError("unreachable")


class Slurm:
    """A one-node Slurm cluster on 127.0.0.1: munged, slurmctld and slurmd
    in `folder`, on free ports (slurmctld runs only where SlurmctldHost names
    this host: its name, with the address 127.0.0.1). `env` is the environment for its clients
    (SLURM_CONF)."""

    NODE = "canopynode"

    def __init__(self, svc, folder):
        self.svc = svc
        self.folder = folder
        os.makedirs(folder)
        # munged refuses a socket whose parent folders are not o+x: the test's
        # own folders are opened up, --force passes over those above.
        for x in (os.path.dirname(folder), folder):
            os.chmod(x, 0o755)
        for sub in ("state", "spool", "munge"):
            os.makedirs(os.path.join(folder, sub))
        self.conf = os.path.join(folder, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    def start(self):
        d = self.folder
        munge_sock = os.path.join(d, "munge", "munge.socket")
        key = os.path.join(d, "munge", "munge.key")
        ct.run([program("mungekey", "munge"), "-c", "-f", "-k", key])
        os.chmod(key, 0o400)
        munged = self.svc.start([program("munged", "munge"), "-F", "--force", "--key-file=" + key,
                                 "--socket=" + munge_sock,
                                 "--pid-file=" + os.path.join(d, "munge", "munged.pid"),
                                 "--seed-file=" + os.path.join(d, "munge", "munged.seed"),
                                 "--log-file=" + os.path.join(d, "munge", "munged.log")],
                                os.path.join(d, "munged.out"))
        wait_until("munged", lambda: os.path.exists(munge_sock), 10,
                   os.path.join(d, "munge", "munged.log"), [munged])
        with open("/proc/meminfo") as f:
            mem_mb = next(int(x.split()[1]) for x in f if x.startswith("MemTotal:")) // 1024
        cpus = os.cpu_count() or 1
        user = getpass.getuser()
        with open(self.conf, "w") as f:
            f.write("""ClusterName=canopytest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={p1}
SlurmdPort={p2}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=batch Nodes={node} Default=YES MaxTime=INFINITE State=UP
""".format(host=socket.gethostname().split(".")[0], node=self.NODE, p1=free_port(), p2=free_port(), user=user, sock=munge_sock, d=d,
                cpus=cpus, mem=mem_mb * 9 // 10))
        ctld = self.svc.start([program("slurmctld", "slurmctld"), "-D", "-i", "-f", self.conf],
                              os.path.join(d, "slurmctld.out"), env=self.env)
        slurmd = self.svc.start([program("slurmd", "slurmd"), "-D", "-N", self.NODE, "-f",
                                 self.conf], os.path.join(d, "slurmd.out"), env=self.env)
        sinfo = program("sinfo", "slurm-client")

        def idle():
            p = subprocess.run([sinfo, "-h", "-n", self.NODE, "-o", "%T"], env=self.env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True)
            return p.returncode == 0 and p.stdout.strip() == "idle"
        wait_until("Slurm node %s idle" % self.NODE, idle, 30, os.path.join(d, "slurmctld.log"),
                   [munged, ctld, slurmd])
        return self

    def stop(self):
        """Cancels every job, stops what slurmd still runs for them by PID
        (scontrol listpids), then the daemons (Services.stop)."""
        def out(*args):
            p = subprocess.run(args, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=30)
            return p.stdout if p.returncode == 0 else ""
        try:
            jobs = out("squeue", "-h", "-o", "%A").split()
            if jobs:
                out("scancel", *jobs)
            pids = [int(x.split()[0]) for x in out("scontrol", "listpids").splitlines()[1:]
                    if x.split() and x.split()[0].isdigit()]
            for pid in pids:
                stop_pid(pid, grace=2.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
