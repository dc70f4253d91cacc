"""Model cards: the limitations a model's own cross-validation shows."""
from __future__ import annotations

from thyroid_studio.engine.models.checkpoint import load_checkpoint


def test_a_card_states_the_limitations_its_own_cross_validation_shows(finished_run, tmp_path):
    """ship_model records cross-validation in the metrics; the card then says what those figures show:
    a gland over nearly the whole image is no prior, an AUC whose interval reaches 0.5 is not evidence."""
    from thyroid_studio.engine.models.card import write_model_card

    _, meta = load_checkpoint(finished_run / "checkpoint_final.pt")
    meta.metrics = {"cross_validation": {
        "description": "exam-grouped 2-fold", "folds": [{"fold": 0, "n": 5, "dice": 0.7}, {"fold": 1, "n": 5, "dice": 0.8}],
        "n": 10, "dice_mean": 0.75, "dice_std": 0.05, "dice_frames": 0.75, "coverage_median": 1.0, "gland_share_mean": 0.97,
        "findings": {"suspicious": {"n": 10, "accuracy": 0.8, "balanced_accuracy": 0.5, "majority_accuracy": 0.8,
                                    "auc": 0.56, "auc_low": 0.46, "auc_high": 0.67}}}}
    card = write_model_card(tmp_path / "m.pt", meta).read_text()
    assert "No frame was held out from this model's training" in card
    assert "marks 97.00 % of the ultrasound image as gland" in card
    assert "AUC 0.560 (95 % CI down to 0.460): not reliably better than chance" in card
    assert "\n\n| finding | frames |" in card  # a Markdown table needs the blank line before it
    meta.metrics["cross_validation"].update(gland_share_mean=0.4)
    meta.metrics["cross_validation"]["findings"]["suspicious"].update(auc=0.9, auc_low=0.8)
    card = write_model_card(tmp_path / "m.pt", meta).read_text()
    assert "as gland" not in card and "better than chance" not in card
