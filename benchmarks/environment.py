"""What a benchmark ran on, so that two runs can be compared."""

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import joblib

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("skae", "torch", "scikit-learn", "skorch", "numpy", "umap-learn", "openTSNE")


def default_n_threads():
    """Every core this process may use (affinity and cgroup limits respected)."""
    return max(1, joblib.cpu_count())


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit():
    """HEAD's hash, with ``+dirty`` when tracked files differ from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_environment(n_threads, command):
    """A dict of the machine, the versions, the commit and the command."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "git_commit": git_commit(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "n_threads": n_threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: package_version(name) for name in PACKAGES},
    }
