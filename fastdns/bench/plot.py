"""The latency plot of ``fastdns bench --plot FILE``: a PNG drawn without plotting libraries.

``latency_plot(series, title)`` draws latency by percentile, one line per server (the usual
HdrHistogram chart: the x axis spreads the tail, 90 %, 99 %, 99.9 %... at equal steps; the y axis
is latency on a log scale) and returns PNG bytes. ``encode_png`` is a minimal PNG writer
(8-bit RGB, one zlib-compressed IDAT; RFC 2083) and ``Canvas`` a pixel buffer with lines,
rectangles and a 5x7 bitmap font for labels.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping

from fastdns.bench.histogram import LatencyHistogram

__all__ = ["Canvas", "encode_png", "latency_plot"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (200, 200, 200)
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]

# 5x7 glyphs, one row per number, bit 4 the leftmost column.
FONT: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "µ": (0x00, 0x11, 0x11, 0x11, 0x13, 0x1D, 0x10),
    " ": (0x00,) * 7,
    ".": (0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C),
    ",": (0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08),
    ":": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "-": (0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00),
    "+": (0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00),
    "=": (0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00),
    "/": (0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "_": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04),
}


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(width: int, height: int, rgb: bytes | bytearray) -> bytes:
    """A PNG of ``width`` x ``height`` 8-bit RGB pixels given row by row."""
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError("pixel buffer size does not match width and height")
    raw = b"".join(b"\x00" + bytes(rgb[y * stride : (y + 1) * stride]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, RGB, no interlace
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


class Canvas:
    """An RGB pixel buffer; drawing outside it is clipped."""

    def __init__(self, width: int, height: int, background: tuple[int, int, int] = WHITE):
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i : i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        """Fill ``x0 <= x <= x1``, ``y0 <= y <= y1``."""
        for y in range(max(y0, 0), min(y1, self.height - 1) + 1):
            for x in range(max(x0, 0), min(x1, self.width - 1) + 1):
                self.set(x, y, color)

    def line(
        self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int], width: int = 1
    ) -> None:
        """A straight line (Bresenham), ``width`` pixels thick."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        low = -(width // 2)
        while True:
            for ox in range(low, low + width):
                for oy in range(low, low + width):
                    self.set(x0 + ox, y0 + oy, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(
        self, x: int, y: int, text: str, color: tuple[int, int, int] = BLACK, scale: int = 2
    ) -> int:
        """Draw ``text`` (upper-cased; unknown characters as ``?``) with its top left at x, y;
        returns the width drawn."""
        start = x
        for char in text:
            char = char if char == "µ" else char.upper()  # "µ".upper() is a Greek capital mu
            rows = FONT.get(char, FONT["?"])
            for row, bits in enumerate(rows):
                for col in range(5):
                    if bits & (0x10 >> col):
                        self.rect(
                            x + col * scale,
                            y + row * scale,
                            x + (col + 1) * scale - 1,
                            y + (row + 1) * scale - 1,
                            color,
                        )
            x += 6 * scale
        return x - start

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return len(text) * 6 * scale

    def png(self) -> bytes:
        return encode_png(self.width, self.height, self.pixels)


def _latency_label(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:g} s"
    if us >= 1e3:
        return f"{us / 1e3:g} ms"
    return f"{us:g} µs"


def latency_plot(
    series: Mapping[str, LatencyHistogram],
    title: str = "latency by percentile",
    width: int = 900,
    height: int = 540,
) -> bytes:
    """PNG bytes: latency (log scale) against percentile, one line per named histogram."""
    series = {name: h for name, h in series.items() if h.total}
    canvas = Canvas(width, height)
    left, right, top, bottom = 110, width - 30, 60, height - 70
    canvas.text(left, 20, title)
    if not series:
        canvas.text(left, height // 2, "no answers to plot")
        return canvas.png()

    # x: -log10(1 - fraction): 0 = 0 %, 1 = 90 %, 2 = 99 %...; as far as the data reaches.
    nines = min(5, max(2, math.ceil(math.log10(max(h.total for h in series.values())))))
    lows = [max(h.min_ns, 1) / 1000 for h in series.values()]
    highs = [max(h.max_ns, 1) / 1000 for h in series.values()]
    y_low = math.floor(math.log10(min(lows)))
    y_high = max(math.ceil(math.log10(max(highs))), y_low + 1)

    def px(fraction: float) -> int:
        depth = min(-math.log10(max(1 - fraction, 10.0**-nines)), nines)
        return round(left + (right - left) * depth / nines)

    def py(us: float) -> int:
        value = (math.log10(max(us, 1e-3)) - y_low) / (y_high - y_low)
        return round(bottom - (bottom - top) * value)

    for decade in range(y_low, y_high + 1):  # horizontal grid and latency labels
        y = py(10.0**decade)
        canvas.line(left, y, right, y, GREY)
        label = _latency_label(10.0**decade)
        canvas.text(left - 10 - canvas.text_width(label), y - 7, label)
    for depth in range(nines + 1):  # vertical grid and percentile labels
        x = round(left + (right - left) * depth / nines)
        canvas.line(x, top, x, bottom, GREY)
        label = "0%" if depth == 0 else f"{100 - 100 / 10**depth:g}%"
        label_x = min(x - canvas.text_width(label) // 2, width - 5 - canvas.text_width(label))
        canvas.text(label_x, bottom + 12, label)
    canvas.line(left, top, left, bottom, BLACK)
    canvas.line(left, bottom, right, bottom, BLACK)
    canvas.text(left + (right - left) // 2 - 60, height - 30, "percentile")

    from fastdns.bench.load import bucket_bounds

    for n, (name, histogram) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        previous_fraction = 0.0
        last = None
        for index in sorted(histogram.counts):
            low, high = bucket_bounds(index)
            us = min(max((low + high) / 2, histogram.min_ns), histogram.max_ns) / 1000
            fraction = previous_fraction + histogram.counts[index] / histogram.total
            start = (px(previous_fraction), py(us))
            end = (px(fraction), py(us))
            if last is not None:
                canvas.line(*last, *start, color, 2)
            canvas.line(*start, *end, color, 2)
            last = end
            previous_fraction = fraction
        legend_y = top + 10 + n * 22
        canvas.rect(left + 15, legend_y + 2, left + 35, legend_y + 12, color)
        canvas.text(left + 45, legend_y, name)
    return canvas.png()
