"""Automatic labels: hand-made raw screens give the boxes computed by hand; real Pong frames give
the agent's paddle in every frame."""

from __future__ import annotations

import numpy as np
import pytest
from howsure.encoders.detection.labels import GAMES, label_raw


def test_pong_hand_made_screen():
    raw = np.full((210, 160), 87, dtype=np.uint8)  # Pong background
    raw[100:116, 140:144] = 147  # the agent's paddle, 4 x 16 raw pixels
    raw[60:64, 80:82] = 236  # the ball
    raw[24:34, :] = 236  # the top wall: white like the ball but outside the play rows
    boxes, classes = label_raw(raw, GAMES["Pong"])
    names = GAMES["Pong"].names
    got = {names[c]: b.tolist() for b, c in zip(boxes, classes)}
    # raw pixel edges scaled by 84/160 horizontally and 84/210 vertically, widened to whole pixels:
    # columns 140-143 -> [73.5, 75.6] -> [73, 76]; rows 100-115 -> [40, 46.4] -> [40, 47]
    assert got["player"] == [73, 40, 76, 47]
    assert got["ball"] == [42, 24, 44, 26]  # [42, 24, 43.05, 25.6]
    assert sorted(got) == ["ball", "player"]


def test_breakout_bricks_on_the_grid_and_ball_apart_from_paddle():
    raw = np.zeros((210, 160), dtype=np.uint8)
    raw[57:63, 8:152] = 110  # the red brick row, all 18 bricks
    raw[57:63, 24:32] = 0  # one brick gone
    raw[63:69, 8:16] = 129  # one brick of the second row
    raw[189:193, 60:76] = 110  # paddle
    raw[189:193, 100:102] = 110  # ball in the paddle rows
    boxes, classes = label_raw(raw, GAMES["Breakout"], (210, 160))
    names = np.array(GAMES["Breakout"].names)[classes]
    assert (names == "brick").sum() == 18
    assert boxes[names == "paddle"].tolist() == [[60, 189, 76, 193]]
    assert boxes[names == "ball"].tolist() == [[100, 189, 102, 193]]
    assert [8, 63, 16, 69] in boxes[names == "brick"].tolist()
    assert [24, 57, 32, 63] not in boxes[names == "brick"].tolist()


@pytest.mark.atari
def test_real_pong_frames_are_labelled():
    from howsure.detector import collect

    data = collect("ALE/Pong-v5", 40, seed=3, every_steps=2)
    assert data["frames"].shape == (40, 84, 84) and data["frames"].dtype == np.uint8
    names = list(data["class_names"])
    player = data["classes"] == names.index("player")
    # the agent's paddle is on screen in every frame, 4 raw pixels (2.1 input pixels) touch 3 input pixels
    assert sorted(set(data["frame_index"][player].tolist())) == list(range(40))
    assert np.allclose(data["boxes"][player, 2] - data["boxes"][player, 0], 3)
    assert (data["classes"] == names.index("ball")).sum() > 0
    # boxes cover bright pixels of the agent's own 84x84 input
    b = data["boxes"][player][0].round().astype(int)
    f = data["frame_index"][player][0]
    assert data["frames"][f, b[1]:b[3], b[0]:b[2]].max() > data["frames"][f].min() + 40
