"""Allow ``python -m smssync``."""

from __future__ import annotations

from smssync.cli import main

main()
