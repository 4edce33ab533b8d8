"""The committed JSON Schemas (config, manifest, event): where they live in the installed package."""
import os

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))


def schema_path(name: str) -> str:
    """The path of `<name>.schema.json`."""
    return os.path.join(SCHEMA_DIR, f"{name}.schema.json")
