"""The command-line layer: every argparse entry point, one file per command group; nothing else imports it."""
from .commands import main

__all__ = ["main"]
