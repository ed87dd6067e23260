"""Which code made a run: the package version and its git commit."""

from __future__ import annotations

import subprocess
from pathlib import Path


def code_version(root: str | Path | None = None) -> dict:
    """The package version and, when it runs from a git checkout (`root`, by default the folder above the
    package), the commit and whether tracked files differ from it (`dirty`)."""
    from .. import __version__

    out = {"version": __version__}
    root = Path(__file__).resolve().parents[2] if root is None else Path(root)
    if (root / ".git").exists():
        git = ["git", "-C", str(root)]
        try:
            commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
            status = subprocess.run([*git, "status", "--porcelain", "-uno"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return out
        if commit.returncode == 0:
            out.update(commit=commit.stdout.strip(), dirty=bool(status.stdout.strip()))
    return out
