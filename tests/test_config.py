"""Every default once; a resumed run is its settings with the given ones on top."""

from __future__ import annotations

import pytest

from yolov2_lib.config import NOT_SETTINGS, SettingError, TrainConfig, merge, parse_sizes, shown
from yolov2_lib.errors import YOLOv2Error


def test_merge_puts_the_given_settings_over_the_saved_ones():
    saved = TrainConfig(lr=0.05, batch_size=16, seed=3, device="cuda", num_workers=4, out_dir="a").to_dict()
    config = merge(saved, {"lr": 1e-4, "out_dir": "b"})
    assert (config.lr, config.batch_size, config.seed) == (1e-4, 16, 3)  # the run's own, unless given
    assert (config.device, config.num_workers, config.out_dir) == (None, 0, "b")  # where it runs: never saved
    assert "num_workers" in NOT_SETTINGS
    assert merge(None, {"epochs": 2}) == TrainConfig(epochs=2)
    with pytest.raises(YOLOv2Error, match="unknown TrainConfig"):
        merge(saved, {"learning_rate": 1})


def test_a_setting_error_names_settings_as_the_caller_does():
    with pytest.raises(SettingError) as err:
        TrainConfig(batch_size=2, accumulate=3)
    assert str(err.value).startswith("accumulate 3 must divide batch_size 2")
    assert err.value.named(lambda f: "--" + f.replace("_", "-")).startswith("--accumulate 3 must divide --batch-size 2")


def test_sizes_and_shown_values():
    assert parse_sizes("320-416") == [320, 352, 384, 416] and parse_sizes("416,320") == [416, 320]
    for text, message in [("400", "multiples of 32"), ("416-320", "reversed; write 320-416"), ("a", "look like")]:
        with pytest.raises(YOLOv2Error, match=message):
            parse_sizes(text, "--sizes")
    assert shown([320, 416]) == "320,416" and shown("sgd") == "'sgd'" and shown(0.5) == "0.5"
