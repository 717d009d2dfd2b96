"""Charts drawn on the server as SVG by pygal, with no script and nothing fetched from elsewhere, in a
style shared by every package: Chinese fonts first, the site's colours."""
from __future__ import annotations

from collections.abc import Callable

from pygal.style import Style

CHART_STYLE = Style(
    background="white", plot_background="white", foreground="#212529", foreground_strong="#212529",
    foreground_subtle="#6c757d", font_family='"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif',
    colors=("#198754", "#20c997", "#fd7e14", "#0d6efd", "#adb5bd", "#dee2e6"),
    label_font_size=12, major_label_font_size=12, legend_font_size=12, title_font_size=14, value_font_size=11)


def chart_options(title: str, *, height: int, value_formatter: Callable[[float], str]) -> dict:
    """What every chart is drawn with: no script, a fixed width, the legend below."""
    return {"title": title, "style": CHART_STYLE, "js": [], "disable_xml_declaration": True, "width": 900,
            "height": height, "legend_at_bottom": True, "legend_at_bottom_columns": 3, "print_values": False,
            "value_formatter": value_formatter}
