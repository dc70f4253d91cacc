"""Legend and display controls for the canvas layers (titles and colours from ``engine/models/roles.py``
through ``layers.SPECS``), and the frame's brightness/contrast."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from ..canvas import LAYERS, Canvas
from ..layers import SPECS


def _slider(minimum: int, maximum: int, value: int, tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(minimum, maximum)
    slider.setValue(value)
    slider.setToolTip(tip)
    return slider


class LayerRow:
    """The widgets of one layer: swatch, name, show, fill, opacity, Dice."""

    def __init__(self, canvas: Canvas, name: str, grid: QGridLayout, row: int) -> None:
        spec, style = SPECS[name], canvas.layer_style(name)
        swatch = QPixmap(14, 14)
        swatch.fill(QColor(*spec.rgb))
        self.swatch = QLabel()
        self.swatch.setPixmap(swatch)
        self.visible = QCheckBox(spec.title)
        self.visible.setChecked(style.visible)
        self.filled = QCheckBox("Fill")
        self.filled.setChecked(style.filled)
        self.filled.setToolTip("Hatched area (checked) or outline only")
        if spec.hatch is None:
            self.filled.hide()  # the heat map has no area to fill
        self.opacity = _slider(0, 100, round(style.opacity * 100), "Opacity")
        self.dice = QLabel()
        self.dice.setToolTip("Dice against the ground truth label")
        self.dice.setMinimumWidth(self.dice.fontMetrics().horizontalAdvance("Dice 0.000"))  # no jump when it appears
        self.visible.setToolTip("Show or hide this layer" if spec.hatch is not None else
                                "Where the model is unsure: its nodule probability, dark (0) to bright (1)")
        for column, widget in enumerate((self.swatch, self.visible, self.filled, self.opacity, self.dice)):
            grid.addWidget(widget, row, column)
        self.visible.toggled.connect(lambda on: canvas.set_layer_style(name, visible=on))
        self.filled.toggled.connect(lambda on: canvas.set_layer_style(name, filled=on))
        self.opacity.valueChanged.connect(lambda v: canvas.set_layer_style(name, opacity=v / 100))


class LayersPanel(QWidget):
    """One legend row per layer with show/fill/opacity controls, and the display window."""

    def __init__(self, canvas: Canvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        layers = QGroupBox("Layers")
        grid = QGridLayout(layers)
        self.rows = {name: LayerRow(canvas, name, grid, i) for i, name in enumerate(LAYERS)}

        window = QGroupBox("Display")
        window_grid = QGridLayout(window)
        self.brightness = _slider(-100, 100, 0, "Brightness (display only)")
        self.contrast = _slider(10, 400, 100, "Contrast (display only)")
        reset = QPushButton("Reset")
        window_grid.addWidget(QLabel("Brightness"), 0, 0)
        window_grid.addWidget(self.brightness, 0, 1)
        window_grid.addWidget(QLabel("Contrast"), 1, 0)
        window_grid.addWidget(self.contrast, 1, 1)
        window_grid.addWidget(reset, 2, 1, Qt.AlignmentFlag.AlignRight)
        self.brightness.valueChanged.connect(self._window_changed)
        self.contrast.valueChanged.connect(self._window_changed)
        reset.clicked.connect(self.reset_window)

        layout = QVBoxLayout(self)
        layout.addWidget(layers)
        layout.addWidget(window)
        layout.addStretch(1)

    def set_dice(self, name: str, value: float | None) -> None:
        """Show a layer's Dice against the ground truth (None clears it)."""
        self.rows[name].dice.setText("" if value is None else f"Dice {value:.3f}")

    def reset_window(self) -> None:
        """Brightness and contrast back to the frame's own."""
        self.brightness.setValue(0)
        self.contrast.setValue(100)

    def _window_changed(self) -> None:
        self._canvas.set_window(self.brightness.value() / 100, self.contrast.value() / 100)
