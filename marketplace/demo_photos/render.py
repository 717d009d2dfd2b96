"""Draws the demo instruments' photos: one small JPEG per instrument category the demo uses, a stylised
instrument of the category's kind on a lab bench, in a colour of its own. Run once; the pictures are kept
in the repository beside this file and `flask demo load` attaches them (marketplace/demo.py).

    .venv/bin/python marketplace/demo_photos/render.py
"""
from __future__ import annotations

import colorsys
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = (480, 360)
BENCH_TOP = 270


def _colour(code: str, lightness: float, saturation: float = 0.35) -> tuple[int, int, int]:
    hue = (zlib.crc32(code.encode()) % 360) / 360
    return tuple(round(c * 255) for c in colorsys.hls_to_rgb(hue, lightness, saturation))


def _screen(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], code: str) -> None:
    draw.rounded_rectangle(box, 4, fill=(24, 36, 48))
    x0, y0, x1, y1 = box
    points = [(x, y1 - 6 - (zlib.crc32(f"{code}{x // 6}".encode()) % max(4, (y1 - y0) - 12)))
              for x in range(x0 + 4, x1 - 3, 6)]
    draw.line(points, fill=(102, 220, 160), width=2)


def _benchtop(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A benchtop analyser: a cabinet with a screen and a sample door."""
    draw.rounded_rectangle((110, 80, 370, BENCH_TOP), 14, fill=body, outline=(70, 70, 70), width=2)
    _screen(draw, (130, 100, 240, 160), code)
    draw.rounded_rectangle((260, 100, 350, 240), 8, fill=(225, 232, 238), outline=(120, 120, 120), width=2)
    for n in range(4):
        draw.ellipse((140 + 22 * n, 200, 154 + 22 * n, 214), fill=(90, 90, 90))


def _frame(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A testing frame: two columns, a crosshead and a load cell."""
    draw.rectangle((140, 230, 340, BENCH_TOP), fill=body, outline=(70, 70, 70), width=2)
    for x in (160, 300):
        draw.rectangle((x, 50, x + 20, 230), fill=(200, 204, 208), outline=(110, 110, 110))
    draw.rectangle((150, 110, 330, 135), fill=body, outline=(70, 70, 70), width=2)
    draw.rectangle((232, 135, 248, 185), fill=(60, 60, 60))
    _screen(draw, (360, 170, 430, 220), code)


def _bridge(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A measuring table with a bridge and a probe."""
    draw.rectangle((70, 220, 410, BENCH_TOP), fill=(90, 94, 100))
    draw.rectangle((110, 90, 130, 220), fill=body, outline=(70, 70, 70))
    draw.rectangle((350, 90, 370, 220), fill=body, outline=(70, 70, 70))
    draw.rectangle((100, 80, 380, 100), fill=body, outline=(70, 70, 70), width=2)
    draw.rectangle((230, 100, 246, 180), fill=(60, 60, 60))
    draw.ellipse((232, 178, 244, 190), fill=(200, 40, 40))
    _screen(draw, (20, 150, 70, 200), code)


def _scope(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A wide bench instrument with a large trace display and knobs."""
    draw.rounded_rectangle((60, 120, 420, BENCH_TOP), 10, fill=body, outline=(70, 70, 70), width=2)
    _screen(draw, (80, 140, 300, 250), code)
    for row in range(3):
        for column in range(3):
            x, y = 320 + 30 * column, 148 + 32 * row
            draw.ellipse((x, y, x + 20, y + 20), fill=(230, 230, 230), outline=(90, 90, 90))


def _drum(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A cabinet with a round lid, as centrifuges, thermal cyclers and imagers are."""
    draw.rounded_rectangle((120, 130, 360, BENCH_TOP), 16, fill=body, outline=(70, 70, 70), width=2)
    draw.ellipse((150, 95, 330, 165), fill=(230, 234, 238), outline=(110, 110, 110), width=2)
    _screen(draw, (150, 190, 230, 240), code)
    draw.rounded_rectangle((260, 200, 330, 225), 6, fill=(70, 160, 90))


def _handheld(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A portable tester with a cable and a probe."""
    draw.rounded_rectangle((150, 110, 290, BENCH_TOP), 18, fill=body, outline=(70, 70, 70), width=2)
    _screen(draw, (170, 130, 270, 200), code)
    draw.line([(290, 230), (340, 250), (380, 220), (400, 240)], fill=(40, 40, 40), width=5)
    draw.rectangle((395, 228, 430, 252), fill=(80, 80, 80))


def _laser(draw: ImageDraw.ImageDraw, code: str, body: tuple[int, int, int]) -> None:
    """A laser head over a stage, its beam on the sample."""
    draw.rectangle((80, 230, 400, BENCH_TOP), fill=(90, 94, 100))
    draw.rounded_rectangle((150, 70, 330, 140), 10, fill=body, outline=(70, 70, 70), width=2)
    draw.polygon([(236, 140), (244, 140), (250, 225), (230, 225)], fill=(255, 90, 90))
    draw.rectangle((190, 222, 290, 232), fill=(200, 200, 200))
    _screen(draw, (20, 170, 70, 215), code)


SHAPES = {"01": _benchtop, "02": _frame, "03": _bridge, "04": _scope, "05": _drum, "06": _handheld, "07": _laser}


def render(code: str) -> Image.Image:
    image = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(image)
    wall_top, wall_bottom = _colour(code, 0.93, 0.25), _colour(code, 0.82, 0.25)
    for y in range(BENCH_TOP):
        t = y / BENCH_TOP
        draw.line([(0, y), (SIZE[0], y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(wall_top, wall_bottom,
                                                                                             strict=True)))
    draw.rectangle((0, BENCH_TOP, SIZE[0], SIZE[1]), fill=(118, 98, 80))
    draw.rectangle((0, BENCH_TOP, SIZE[0], BENCH_TOP + 8), fill=(150, 128, 106))
    SHAPES[code[:2]](draw, code, _colour(code, 0.62, 0.3))
    return image.filter(ImageFilter.SMOOTH)


def main() -> None:
    from marketplace.demo import INSTRUMENTS

    for code in sorted({row[0] for row in INSTRUMENTS}):
        render(code).save(HERE / f"{code}.jpg", "JPEG", quality=72, optimize=True, progressive=True)


if __name__ == "__main__":
    main()
