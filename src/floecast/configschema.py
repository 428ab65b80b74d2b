"""The config's JSON schema file (structure, descriptions and defaults), declared once.

Its own module so that what reads only the defaults (the SIC product chain's) does not
import the config checks, which import it back.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def schema_path() -> Path:
    with resources.as_file(resources.files("floecast") / "schema" / "config.schema.yaml") as path:
        return Path(path)


def load_schema() -> dict:
    import yaml  # only where the schema is read: the rules' envs hold no pyyaml

    return yaml.safe_load(schema_path().read_text())
