"""Print where a finished run's forecast, plots and scorecard are, and the skill summary."""

from __future__ import annotations

import sys

import pandas as pd

from floecast import layout
from floecast.config import load
from floecast.verify import skill_summary


def main(config_path: str) -> int:
    config = load(config_path)
    for hemi in config["hemispheres"]:
        values = {"hemi": hemi, "run": config["run"], "date": config["date"]}
        paths = {
            "forecast": layout.path(".", layout.FORECAST, **values),
            "maps": layout.path(".", layout.MAPS_PLOT, **values),
            "extent plot": layout.path(".", layout.EXTENT_PLOT, **values),
            "scorecard": layout.path(".", layout.SCORECARD, **values),
            "skill plot": layout.path(".", layout.SKILL_PLOT, **values),
        }
        for label, path in paths.items():
            print(f"{label:>12}: {path}{'' if path.exists() else '  (missing)'}")
        if paths["scorecard"].exists():
            for line in skill_summary(pd.read_csv(paths["scorecard"]))[:3]:
                print(f"{'':>12}  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "config/demo.yaml"))
