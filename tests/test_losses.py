"""Training losses: each head scored on its own frames, a few steps lower the loss on real frames, the weak gland
loss, the findings loss with unknown labels and class weights."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.findings.fields import FIELDS
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta
from thyroid_studio.engine.training.augment import build_augmentation
from thyroid_studio.engine.training.frameset import load_frames, make_batch
from thyroid_studio.engine.training.losses import LossWeights, multitask_loss, soft_dice_loss


def test_multitask_loss_scores_each_head_on_its_own_frames():
    target = torch.zeros(4, 1, 8, 8)
    target[:2, :, 2:6, 2:6] = 1  # nodule frames 0, 1
    target[2:] = 1  # gland frames 2, 3
    perfect = (target * 2 - 1) * 20
    wrong = -perfect
    is_nodule = torch.tensor([True, True, False, False])
    loss, parts = multitask_loss({"nodule": perfect, "gland": perfect}, target, is_nodule)
    assert loss < 0.02
    # A nodule head that is wrong on gland frames costs nothing: it is not scored there.
    nodule_out = torch.cat([perfect[:2], wrong[2:]])
    assert multitask_loss({"nodule": nodule_out, "gland": perfect}, target, is_nodule)[0] < 0.02
    assert soft_dice_loss(wrong[:1], target[:1]).item() > 0.9
    assert set(parts) == {"nodule_loss", "gland_loss"}


def test_a_few_steps_lower_the_loss_on_real_frames(shared_data):
    torch.manual_seed(0)
    meta = ModelMeta(arch="trfe-a", width=4, input_size=(64, 64))
    nodules = load_frames(open_dataset(shared_data / "ddti").samples[:8], meta)
    glands = load_frames(open_dataset(shared_data / "tg3k").split("train")[:8], meta)
    items = [(nodules, i, True) for i in range(8)] + [(glands, i, False) for i in range(8)]
    none = build_augmentation("none")
    batch = make_batch(items, meta, {True: none, False: none}, np.random.default_rng(0))
    model = build_model("trfe-a", 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss, _ = multitask_loss(model(batch.inputs), batch.masks, batch.is_nodule, LossWeights("dice+bce"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_weak_gland_loss_only_pushes_the_gland_up_inside_the_nodule():
    from thyroid_studio.engine.training.losses import weak_gland_loss

    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    nodule = torch.zeros(1, 1, 8, 8)
    nodule[..., 2:4, 2:4] = 1
    weak_gland_loss(logits, nodule).backward()
    assert (logits.grad[nodule == 1] < 0).all() and (logits.grad[nodule == 0] == 0).all()
    confident = torch.full((1, 1, 8, 8), 10.0)
    assert weak_gland_loss(confident, nodule) < 1e-3 < weak_gland_loss(-confident, nodule)


def test_findings_loss_skips_unknown_labels_and_weights_classes():
    from thyroid_studio.engine.training.losses import findings_loss

    logits = {"suspicious": torch.tensor([3.0, -3.0, 0.0]), "tirads": torch.zeros(3, 6)}
    labels = {"suspicious": torch.tensor([1, 0, -1]), "tirads": torch.tensor([-1, -1, -1])}
    weights = {"suspicious": torch.tensor([1.0, 1.0]), "tirads": torch.ones(6)}
    losses = findings_loss(logits, labels, weights)
    assert set(losses) == {"suspicious"} and losses["suspicious"] < 0.06  # both known frames right; the third unknown
    heavy = findings_loss({"suspicious": torch.tensor([-3.0, -3.0])}, {"suspicious": torch.tensor([1, 0])},
                          {"suspicious": torch.tensor([1.0, 9.0])})["suspicious"]
    light = findings_loss({"suspicious": torch.tensor([-3.0, -3.0])}, {"suspicious": torch.tensor([1, 0])},
                          {"suspicious": torch.tensor([9.0, 1.0])})["suspicious"]
    assert heavy > light  # the wrong frame (class 1) counts more when its class weighs more


def test_findings_loss_is_never_nan_when_the_weights_know_no_class():
    """Fine-tuning on corrected frames without labels, replaying labelled ones: a head whose class weights
    are all 0 (no labelled frame in the weighted sets) must add nothing, not NaN."""
    from thyroid_studio.engine.training.frameset import FrameSet, class_weights
    from thyroid_studio.engine.training.losses import findings_loss

    empty = FrameSet([], np.zeros((0, 4, 4), np.uint8), np.zeros((0, 4, 4), np.uint8), {"suspicious": np.zeros(0, np.int64)})
    labelled = FrameSet(["a", "b"], np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8),
                        {"suspicious": np.array([1, 0])})
    vocabulary = {"tirads": list(FIELDS["tirads"])}
    assert class_weights([empty], vocabulary)["suspicious"].sum() == 0
    assert torch.equal(class_weights([empty, labelled], vocabulary)["suspicious"], torch.tensor([1.0, 1.0]))
    losses = findings_loss({"suspicious": torch.tensor([2.0, -2.0])}, {"suspicious": torch.tensor([1, 0])},
                           class_weights([empty], vocabulary))
    assert losses == {}


def test_the_gland_head_is_scored_on_nodule_frames_that_have_a_gland_label_and_weakly_on_the_others():
    nodules = torch.zeros(3, 1, 8, 8)
    nodules[:, :, 3:5, 3:5] = 1
    lobe = torch.zeros(3, 1, 8, 8)
    lobe[:, :, 1:7, 1:7] = 1
    is_nodule = torch.tensor([True, True, True])
    known = torch.tensor([True, False, False])
    right = (lobe * 2 - 1) * 20
    # Frame 0 has a lobe label: a gland head that marks only the nodule there is wrong, and is scored so.
    only_nodule = (nodules * 2 - 1) * 20
    good = multitask_loss({"nodule": only_nodule, "gland": right}, nodules, is_nodule, glands=lobe, gland_known=known)
    bad = multitask_loss({"nodule": only_nodule, "gland": only_nodule}, nodules, is_nodule, glands=lobe, gland_known=known)
    assert good[1]["gland_loss"] < 0.02 < 0.2 < bad[1]["gland_loss"]
    # Frames 1 and 2 have none: what the gland head says there costs nothing, except with weak supervision
    # on their nodule pixels.
    off_elsewhere = torch.cat([right[:1], -right[1:]])
    assert multitask_loss({"nodule": only_nodule, "gland": off_elsewhere}, nodules, is_nodule,
                          glands=lobe, gland_known=known)[1]["gland_loss"] < 0.02
    weak = multitask_loss({"nodule": only_nodule, "gland": off_elsewhere}, nodules, is_nodule,
                          LossWeights(weak_gland=1.0), glands=lobe, gland_known=known)[1]
    assert weak["weak_gland_loss"] > 10


def test_a_batch_carries_the_gland_labels_of_nodule_frames_through_the_same_augmentation(tmp_path):
    from dataset_files import write_nodule_pairs

    root = write_nodule_pairs(tmp_path / "n", ["1", "2"], seed=3)
    lobes = tmp_path / "lobes"
    lobes.mkdir()
    mask = cv2.imread(str(root / "mask" / "1.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(lobes / "1.png"), cv2.dilate(mask, np.ones((9, 9), np.uint8)))
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64))
    frames = load_frames(open_dataset(root).samples, meta, glands={"1": lobes / "1.png"})
    assert frames.gland_known.tolist() == [True, False]
    batch = make_batch([(frames, 0, True), (frames, 1, True)], meta,
                       {True: build_augmentation("ultrasound"), False: build_augmentation("none")}, np.random.default_rng(0))
    assert batch.gland_known.tolist() == [True, False]
    nodule, gland = batch.masks[0, 0] > 0.5, batch.glands[0, 0] > 0.5
    assert nodule.any() and bool((gland | ~nodule).all())  # the lobe still holds the nodule after the flip/scale/rotation
    assert gland.sum() > nodule.sum()
