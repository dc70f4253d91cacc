"""Every registered network: output shapes, gradients, parameter counts at the paper's width."""
from __future__ import annotations

import pytest
import torch

from thyroid_studio.engine.models.architectures import ARCHITECTURES, build_model


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_shapes_and_heads(arch: str) -> None:
    model = build_model(arch, width=4).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 96))
    assert out["nodule"].shape == (2, 1, 64, 96)
    if arch == "unet":
        assert "gland" not in out
    else:
        assert out["gland"].shape == (2, 1, 64, 96)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_parameter_gets_a_gradient(arch: str) -> None:
    model = build_model(arch, width=4)
    out = model(torch.randn(2, 3, 32, 32))
    loss = sum(logits.mean() for logits in out.values())
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.slow
def test_paper_width_parameter_counts_match_the_paper() -> None:
    # Reference notes: U-Net 31.0 M, MT-Net 43.2 M parameters at 64 base channels.
    count = lambda arch: sum(p.numel() for p in build_model(arch, 64).parameters()) / 1e6  # noqa: E731
    assert count("unet") == pytest.approx(31.0, abs=0.1)
    assert count("mtnet") == pytest.approx(43.2, abs=0.1)
    assert count("trfe-a") == count("mtnet")  # variant A adds no parameters
    assert count("trfe-b") > count("mtnet") and count("trfe-c") > count("trfe-b")


def test_trfe_prior_changes_the_nodule_output() -> None:
    """The gland prior really feeds the nodule decoder: same weights, different gland head -> different nodule."""
    torch.manual_seed(0)
    model = build_model("trfe-a", width=4).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        before = model(x)["nodule"].clone()
        model.gland_decoder.head.bias.add_(5.0)
        after = model(x)["nodule"]
    assert not torch.allclose(before, after)


def test_mtnet_has_no_prior() -> None:
    torch.manual_seed(0)
    model = build_model("mtnet", width=4).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        before = model(x)["nodule"].clone()
        model.gland_decoder.head.bias.add_(5.0)
        assert torch.equal(before, model(x)["nodule"])


def test_unknown_architecture_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unet, mtnet, trfe-a"):
        build_model("deeplab")


@pytest.mark.parametrize("arch", ["trfe-a", "trfe-b", "trfe-c"])
def test_a_detached_prior_keeps_the_nodule_loss_out_of_the_gland_decoder(arch: str) -> None:
    def gland_gradient(prior_gradient: bool) -> float:
        torch.manual_seed(0)
        model = build_model(arch, width=4)
        model.prior_gradient = prior_gradient
        model(torch.randn(2, 3, 32, 32))["nodule"].sum().backward()
        return sum(float(p.grad.abs().sum()) for p in model.gland_decoder.parameters() if p.grad is not None)

    assert gland_gradient(True) > 0
    assert gland_gradient(False) == 0


def test_group_norm_decoders_and_a_frozen_encoder_batch_norm() -> None:
    from torch import nn

    model = build_model("trfe-a", width=8, in_channels=1, encoder="efficientnet-lite0", norm="group").train()
    decoder_norms = {type(m) for m in model.nodule_decoder.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))}
    assert decoder_norms == {nn.GroupNorm}
    encoder_bn = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert encoder_bn and not any(m.training for m in encoder_bn)  # their statistics stay the pretrained ones
    before = encoder_bn[0].running_mean.clone()
    model(torch.randn(2, 1, 64, 64) * 5 + 3)
    assert torch.equal(encoder_bn[0].running_mean, before)
    assert build_model("unet", width=4).train().encoder.blocks[0][1].training  # batch norm: as before
    with pytest.raises(ValueError, match="normalisation"):
        build_model("unet", width=4, norm="layer")


def test_a_checkpoint_rebuilds_its_normalisation(tmp_path) -> None:
    from thyroid_studio.engine.models.checkpoint import ModelMeta, load_checkpoint, save_checkpoint

    model = build_model("mtnet", width=4, norm="group")
    save_checkpoint(tmp_path / "m.pt", model, ModelMeta("mtnet", 4, norm="group"))
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta.norm == "group" and any(isinstance(m, torch.nn.GroupNorm) for m in loaded.modules())
