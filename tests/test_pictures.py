"""Detections drawn into a picture file, in the class colours of the book's figures."""

from __future__ import annotations

import numpy as np
import torch

from yolov2_lib.colors import class_rgb
from yolov2_lib.pictures import annotate, to_picture


def test_boxes_are_drawn_in_their_class_colour_on_a_copy():
    image = torch.zeros(3, 60, 80)
    picture = to_picture(image)
    assert picture.size == (80, 60) and picture.mode == "RGB"
    drawn = annotate(picture, torch.tensor([[10.0, 20.0, 50.0, 55.0, 0.9, 2.0]]), ["a", "b", "c"])
    pixels = np.asarray(drawn)
    assert tuple(pixels[40, 10]) == class_rgb(2)  # the left edge of the box
    assert tuple(pixels[40, 30]) == (0, 0, 0)  # inside stays the image
    assert np.asarray(picture).max() == 0  # the input picture is untouched


def test_to_picture_rounds_as_the_detector_saw_it():
    image = torch.tensor([0.0, 0.5, 1.0, 1.5]).reshape(1, 1, 4).expand(3, 1, 4)
    assert np.asarray(to_picture(image))[0, :, 0].tolist() == [0, 128, 255, 255]
