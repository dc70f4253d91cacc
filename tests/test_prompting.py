"""Box prompts: the LiteMedSAM network's shapes, frame <-> model-square mapping, the embedding cache, propagation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference.prompting import (PromptSegmenter, box_around, box_to_model, clip_box,
                                                       model_geometry, model_input, propagate)
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.metrics import dice
from thyroid_studio.engine.models.library import shipped_dir
from thyroid_studio.engine.nets.litemedsam import LiteMedSAMConfig
from thyroid_studio.engine.nets.tinyvit import relative_offset_index

from prompt_models import TINY, BoxEcho, tiny_litemedsam


def textured(shape: tuple[int, int]) -> np.ndarray:
    """Gray 128 with one black pixel, so that min-max scaling leaves the frame non-zero (BoxEcho's "not black")."""
    pixels = np.full(shape, 128, np.uint8)
    pixels[-1, -1] = 0
    return pixels


# ---------------------------------------------------------------- the network


def test_network_shapes():
    model = tiny_litemedsam()
    with torch.inference_mode():
        embeddings = model.encode(torch.rand(2, 3, 64, 64))
        assert embeddings.shape == (2, 32, 16, 16)
        boxes = torch.tensor([[4.0, 4.0, 30.0, 40.0], [0.0, 0.0, 63.0, 63.0], [10.0, 20.0, 12.0, 22.0]])
        masks, iou = model.decode(embeddings[:1], boxes=boxes)
        assert masks.shape == (3, 1, 64, 64) and iou.shape == (3, 1)
        masks, iou = model.decode(embeddings[:1], boxes=boxes[:1], multimask_output=True)
        assert masks.shape == (1, 3, 64, 64) and iou.shape == (1, 3)
        clicks = (torch.tensor([[[20.0, 30.0], [50.0, 5.0]]]), torch.tensor([[1, 0]]))
        assert model.decode(embeddings[1:], points=clicks)[0].shape == (1, 1, 64, 64)
        assert model(torch.rand(2, 3, 64, 64), boxes[:2]).shape == (2, 1, 64, 64)


def test_box_prompt_changes_the_mask():
    model = tiny_litemedsam()
    with torch.inference_mode():
        embedding = model.encode(torch.rand(1, 3, 64, 64))
        a, _ = model.decode(embedding, boxes=torch.tensor([[2.0, 2.0, 20.0, 20.0]]))
        b, _ = model.decode(embedding, boxes=torch.tensor([[30.0, 30.0, 60.0, 60.0]]))
    assert not torch.allclose(a, b)


def test_attention_bias_offsets_follow_tinyvit_numbering():
    """TinyViT numbers relative offsets in the order it first meets them, scanning query and key pixels."""
    for window in (2, 7, 14):
        points = list(itertools.product(range(window), range(window)))
        numbers: dict[tuple[int, int], int] = {}
        expected = [
            numbers.setdefault((abs(p[0] - q[0]), abs(p[1] - q[1])), len(numbers)) for p in points for q in points
        ]
        assert relative_offset_index(window).flatten().tolist() == expected


def test_config_round_trip_and_unknown_keys():
    assert LiteMedSAMConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="unknown LiteMedSAM settings: colour"):
        LiteMedSAMConfig.from_dict({**TINY.to_dict(), "colour": 1})


# ---------------------------------------------------------------- frame <-> model square


@pytest.mark.parametrize("shape, content", [((360, 560), (165, 256)), ((560, 360), (256, 165)), ((100, 100), (256, 256))])
def test_longest_side_is_resized_and_padding_is_bottom_right(shape, content):
    geometry = model_geometry(shape, 256)
    assert (geometry.content.y0, geometry.content.x0) == (0, 0)
    assert (geometry.content.height, geometry.content.width) == content
    pixels = np.full(shape, 90, np.uint8)
    pixels[0, 0] = 10
    x = model_input(pixels, geometry, 256)
    assert x.shape == (3, 256, 256) and x.dtype == np.float32
    inside = x[:, : content[0], : content[1]]
    assert inside.max() == pytest.approx(1.0) and inside.min() == pytest.approx(0.0)
    assert not x[:, content[0] :, :].any() and not x[:, :, content[1] :].any()


def test_gray_fills_three_channels_and_colour_keeps_them():
    geometry = model_geometry((40, 60), 64)
    gray = model_input(np.arange(2400, dtype=np.uint8).reshape(40, 60), geometry, 64)
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 200
    colour = model_input(rgb, geometry, 64)
    assert colour[0, :20, :30].min() == 1.0 and colour[1].max() == 0.0


@pytest.mark.parametrize("shape", [(300, 500), (500, 300), (360, 280)])
def test_box_lands_on_the_same_pixels_in_the_model_square(shape):
    """A bright rectangle on a dark frame: its pixels in the model input are where box_to_model puts the box."""
    box = (shape[1] // 5, shape[0] // 6, shape[1] // 2 + 7, shape[0] // 2 + 3)
    pixels = np.zeros(shape, np.uint8)
    pixels[box[1] : box[3], box[0] : box[2]] = 255
    geometry = model_geometry(shape, 256)
    bright = model_input(pixels, geometry, 256)[0] > 0.5
    ys, xs = np.nonzero(bright)
    assert np.abs(box_to_model(box, geometry) - [xs.min(), ys.min(), xs.max(), ys.max()]).max() <= 1


def test_whole_frame_box_is_the_whole_content():
    geometry = model_geometry((360, 560), 256)
    assert box_to_model((0, 0, 560, 360), geometry).tolist() == [0.0, 0.0, 255.0, 164.0]


@pytest.mark.parametrize("shape", [(360, 560), (560, 360), (257, 1000)])
def test_segment_returns_the_box_at_frame_resolution(shape):
    """BoxEcho answers with the box it receives: the mask must come back onto the frame's box."""
    prompter = PromptSegmenter(BoxEcho(), device="cpu")
    embedding = prompter.embed(textured(shape))
    box = (shape[1] * 0.3, shape[0] * 0.25, shape[1] * 0.7, shape[0] * 0.6)
    mask = prompter.segment(embedding, box)
    assert mask.shape == shape and mask.dtype == bool
    ys, xs = np.nonzero(mask)
    scale = max(shape) / 256  # frame pixels per model pixel
    assert np.abs(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) - box).max() <= scale
    probability = prompter.probability(embedding, box)
    assert probability.dtype == np.float32 and np.array_equal(probability > 0.5, mask)


def test_clip_box():
    assert clip_box((-5, -1, 30, 500), (100, 200)) == (0.0, 0.0, 30, 100.0)
    with pytest.raises(ValueError, match="outside the 200x100 frame"):
        clip_box((210, 10, 250, 20), (100, 200))
    with pytest.raises(ValueError, match="empty"):
        clip_box((10, 10, 10, 20), (100, 200))
    with pytest.raises(ValueError, match="not a number"):
        clip_box((float("nan"), 10, 20, 20), (100, 200))


def test_box_around_a_mask():
    mask = np.zeros((50, 80), bool)
    mask[10:20, 30:45] = True
    mask[12, 70] = True  # a second component widens the box
    assert box_around(mask, 0) == (30.0, 10.0, 71.0, 20.0)
    assert box_around(mask, 5) == (25.0, 5.0, 76.0, 25.0)
    assert box_around(mask, 40) == (0.0, 0.0, 80.0, 50.0)
    assert box_around(np.zeros((5, 5), bool)) is None


# ---------------------------------------------------------------- the embedding cache


def test_embedding_is_cached_by_array_identity():
    model = BoxEcho(64)
    prompter = PromptSegmenter(model, device="cpu", cache_size=2)
    a, b, c = (np.full((30, 40), v, np.uint8) for v in (10, 20, 30))
    first = prompter.embed(a)
    assert prompter.embed(a) is first and model.encoded == 1
    a2 = a.copy()
    assert prompter.embed(a2) is not first and model.encoded == 2  # equal pixels, another array
    assert prompter.cached(a) is first  # touched: now the most recent
    prompter.embed(b)  # evicts the least recently used: a2
    assert prompter.cached(a2) is None and prompter.cached(a) is first and prompter.cached(b) is not None
    prompter.embed(c, cache=False)
    assert prompter.cached(c) is None and model.encoded == 4


# ---------------------------------------------------------------- propagation


def clip_frames(count: int, shape=(120, 160)) -> list[np.ndarray]:
    return [textured(shape) for _ in range(count)]


def test_propagate_prompts_each_frame_with_the_previous_mask_box():
    prompter = PromptSegmenter(BoxEcho(), device="cpu")
    start = np.zeros((120, 160), bool)
    start[40:60, 50:80] = True
    frames = clip_frames(3)
    masks = list(propagate(prompter, frames, start, margin=4))
    assert len(masks) == 3
    for k, mask in enumerate(masks, start=1):  # BoxEcho returns the box, so the mask grows by the margin each frame
        assert box_around(mask, 0) == pytest.approx((50 - 4 * k, 40 - 4 * k, 80 + 4 * k, 60 + 4 * k), abs=1)
    assert all(prompter.cached(frame) is None for frame in frames)  # a clip does not flush the cache


def test_propagate_stops_when_the_mask_vanishes_or_when_asked():
    prompter = PromptSegmenter(BoxEcho(), device="cpu")
    start = np.zeros((120, 160), bool)
    start[40:60, 50:80] = True
    frames = clip_frames(4)
    frames[2][:] = 0  # BoxEcho finds nothing on a black frame
    assert len(list(propagate(prompter, frames, start))) == 2
    calls = []
    stopped = list(propagate(prompter, clip_frames(4), start, should_stop=lambda: calls.append(1) or len(calls) > 1))
    assert len(stopped) == 1
    assert list(propagate(prompter, clip_frames(2), np.zeros((120, 160), bool))) == []


# ---------------------------------------------------------------- the shipped weights on real frames


@pytest.fixture(scope="module")
def litemedsam() -> PromptSegmenter:
    path = shipped_dir() / "litemedsam.pt"
    if not path.is_file():
        pytest.skip("no shipped LiteMedSAM (tools/convert_litemedsam.py makes it)")
    return PromptSegmenter.from_checkpoint(path, device="cpu")


@pytest.mark.slow
def test_real_frames_with_ground_truth_boxes(shared_data, litemedsam):
    """Boxes from the ground truth + 5 px: LiteMedSAM's masks beat the box itself taken as the mask."""
    found, boxes = [], []
    for name in ("1", "10004", "20005"):
        pixels = read_frame(shared_data / "ddti" / "image" / f"{name}.png").pixels
        gt = read_mask(shared_data / "ddti" / "mask" / f"{name}.png")
        box = box_around(gt, 5)
        found.append(dice(litemedsam.segment(litemedsam.embed(pixels), box), gt))
        filled = np.zeros_like(gt)
        filled[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = True
        boxes.append(dice(filled, gt))
    assert min(found) > 0.8 and np.mean(found) > np.mean(boxes) + 0.05, (found, boxes)


@pytest.mark.slow
def test_real_frame_propagates_through_a_moving_clip(shared_data, litemedsam):
    """A clip made by shifting a DDTI frame 6 px right per frame: the propagated masks follow the nodule."""
    pixels = read_frame(shared_data / "ddti" / "image" / "10004.png").pixels
    gt = read_mask(shared_data / "ddti" / "mask" / "10004.png")
    clip = [np.roll(pixels, 6 * k, axis=1) for k in (1, 2)]
    masks = list(propagate(litemedsam, clip, gt))
    assert len(masks) == 2
    for k, mask in enumerate(masks, start=1):
        assert dice(mask, np.roll(gt, 6 * k, axis=1)) > 0.8
