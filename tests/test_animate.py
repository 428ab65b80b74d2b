"""Animations: a forecast over its leads and the input SIC over a period, as MP4 (imageio-ffmpeg) and GIF."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import imageio_ffmpeg
import pytest
from conftest import TinyData
from PIL import Image
from test_forecast_file import LEADS, climatology_members

from floecast.animate import animate_forecast, animate_inputs
from floecast.cli import main
from floecast.combine import combine_forecast


@pytest.fixture(scope="module")
def forecast(tiny_data: TinyData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("animate")
    out = root / "forecast.nc"
    combine_forecast(climatology_members(tiny_data, root / "members"), tiny_data.store, tiny_data.grid, "tiny", out)
    return out


def test_forecast_mp4_has_a_frame_per_lead(forecast: Path, tmp_path: Path) -> None:
    out = tmp_path / "forecast.mp4"
    assert animate_forecast(forecast, out) == len(LEADS)
    assert out.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == len(LEADS) and seconds == pytest.approx(len(LEADS) / 4, abs=0.3)
    assert [p.name for p in tmp_path.iterdir()] == ["forecast.mp4"]  # nothing half-written left


def test_inputs_gif_and_mp4_over_a_period(tiny_data: TinyData, tmp_path: Path) -> None:
    paths = [tiny_data.interim("sic", 2004), tiny_data.interim("sic", 2005)]
    gif = tmp_path / "inputs.gif"
    assert animate_inputs(paths, dt.date(2004, 12, 28), dt.date(2005, 1, 4), gif) == 8  # across the year's end
    with Image.open(gif) as image:
        assert image.n_frames == 8
    args = ["animate", "inputs", "--interim", *map(str, paths), "--first", "2005-01-01", "--last", "2005-01-10"]
    assert main([*args, "--out", str(tmp_path / "inputs.mp4")]) == 0
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "inputs.mp4"))[0] == 10
    with pytest.raises(ValueError, match="lack"):
        animate_inputs(paths, dt.date(2005, 4, 25), dt.date(2005, 5, 5), tmp_path / "late.mp4")  # the data end 04-30
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        animate_inputs(paths, dt.date(2005, 1, 1), dt.date(2005, 1, 2), tmp_path / "inputs.avi")
