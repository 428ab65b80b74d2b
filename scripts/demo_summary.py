"""Print where a finished run's forecast, plots and scorecard are, and the skill summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from floecast.config import load
from floecast.verify import skill_summary


def main(config_path: str) -> int:
    config = load(config_path)
    for hemi in config["hemispheres"]:
        results = Path("results") / hemi / config["run"]
        paths = {
            "forecast": results / "forecasts" / f"{config['date']}.nc",
            "maps": results / "plots" / f"{config['date']}_maps.png",
            "extent plot": results / "plots" / f"{config['date']}_extent.png",
            "scorecard": results / "verification" / "scorecard.csv",
            "skill plot": results / "verification" / "skill.png",
        }
        for label, path in paths.items():
            print(f"{label:>12}: {path}{'' if path.exists() else '  (missing)'}")
        if paths["scorecard"].exists():
            for line in skill_summary(pd.read_csv(paths["scorecard"]))[:3]:
                print(f"{'':>12}  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "config/demo.yaml"))
