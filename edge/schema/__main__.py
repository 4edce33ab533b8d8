"""`python -m edge.schema NAME`: print a generated JSON Schema exactly as committed here (NAME.schema.json)."""
import argparse
import importlib
import sys

GENERATED = {"manifest": "edge.bundle", "config": "edge.service.config"}  # schema name -> module with schema_text()


def main() -> int:
    """Print the schema generated from the dataclasses that declare it."""
    parser = argparse.ArgumentParser(prog="python -m edge.schema", description=main.__doc__)
    parser.add_argument("name", choices=sorted(GENERATED))
    args = parser.parse_args()
    sys.stdout.write(importlib.import_module(GENERATED[args.name]).schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
