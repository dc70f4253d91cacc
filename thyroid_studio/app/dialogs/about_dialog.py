"""Help > About: version, the cards of the segmentation models and of the box-prompt model (LiteMedSAM),
the data citations and the research-use notice."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QTextBrowser, QVBoxLayout, QWidget

from ... import __version__
from ...engine.models.checkpoint import CheckpointError
from ...engine.models.library import ModelEntry, default_prompt_model, list_models

RESEARCH_NOTE = "For research, not diagnosis."
CITATIONS = [
    ("TN3K and TRFE-Net", "H. Gong, G. Chen, R. Wang, X. Xie, M. Mao, Y. Yu, F. Chen, G. Li, "
     "\"Multi-task learning for thyroid nodule segmentation with thyroid region prior\", "
     "IEEE ISBI 2021."),
    ("DDTI", "L. Pedraza, C. Vargas, F. Narvaez, O. Duran, E. Munoz, E. Romero, "
     "\"An open access thyroid ultrasound image database\", Proc. SPIE 9287, 2015."),
    ("LiteMedSAM (box prompts)", "J. Ma, Y. He, F. Li, L. Han, C. You, B. Wang, \"Segment anything in medical "
     "images\", Nature Communications 15, 654 (2024); its lightweight version, LiteMedSAM (see its card)."),
    ("TG3K", "T. Wunderling, B. Golla, P. Poudel, C. Arens, M. Friebe, C. Hansen, "
     "\"Comparison of thyroid segmentation techniques for 3D ultrasound\", SPIE Medical Imaging 2017."),
]


def about_markdown() -> str:
    lines = [f"# Thyroid Studio {__version__}", "",
             "Thyroid nodule segmentation in ultrasound frames with TRFE-Net (red) and U-Net (yellow); "
             "ground truth and corrected labels in green.", "", f"**{RESEARCH_NOTE}**", "", "## Data and methods", ""]
    lines += [f"- **{name}**: {text}" for name, text in CITATIONS]
    return "\n".join(lines)


def _card_markdown(entry: ModelEntry) -> str:
    if entry.card is not None:
        return entry.card.read_text(encoding="utf-8")
    meta = entry.meta
    return f"# {meta.name or entry.path.stem}\n\n{meta.arch}, width {meta.width}, input {meta.input_size}; no card.\n"


def prompt_model_card() -> tuple[str, str] | None:
    """(tab title, Markdown) of the shipped box-prompt model's card; None when it does not ship.
    Not a segmentation checkpoint, so ``list_models`` leaves it out."""
    try:
        card = default_prompt_model().with_suffix(".md")
    except CheckpointError:
        return None
    return (card.stem, card.read_text(encoding="utf-8")) if card.is_file() else None


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Thyroid Studio")
        self.resize(640, 520)
        tabs = QTabWidget(self)
        tabs.addTab(self._browser(about_markdown()), "About")
        for entry in list_models():
            tabs.addTab(self._browser(_card_markdown(entry)), entry.path.stem)
        prompt = prompt_model_card()
        if prompt is not None:
            tabs.addTab(self._browser(prompt[1]), prompt[0])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)

    def _browser(self, markdown: str) -> QTextBrowser:
        browser = QTextBrowser(self)
        browser.setOpenExternalLinks(True)
        browser.setMarkdown(markdown)
        return browser
