"""Placeholder until the template lands: show that the CLI runs."""
import subprocess
import sys
from pathlib import Path

sys.exit(subprocess.call([str(Path(sys.executable).parent / "seedkit"), "--version"]))
