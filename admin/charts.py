"""Charts drawn by the app as inline SVG (no script, no inline style: the CSP allows neither)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT = 960, 380
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 56, 48
# One colour per line, as presentation attributes (fill=), which the CSP allows.
COLOURS = {"sos": "#c0392b", "hotline": "#1f6fb2", "shortcut": "#2e8b57"}
OTHER_COLOUR = "#777777"
STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def _ticks(top: int) -> list[int]:
    """Round steps from 0 to at least ``top`` (about five of them)."""
    step = next((s for s in STEPS if top / s <= 5), STEPS[-1])
    return list(range(0, max(1, -(-top // step)) * step + 1, step))


def hour_bars(
    hours: dict[str, list[int]], names: dict[str, str], *, title: str, chart_id: str
) -> Markup:
    """A bar chart of calls per hour of the day, one bar per line in each hour."""
    ticks = _ticks(max((n for counts in hours.values() for n in counts), default=0))
    scale_top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / 24
    bar_w = slot * 0.8 / max(1, len(hours))
    total = sum(sum(counts) for counts in hours.values())
    summary = "；".join(f"{names.get(line, line)}{sum(c)}通" for line, c in hours.items())
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">共{total}通：{escape(summary)}</desc>',
    ]
    for tick in ticks:
        y = TOP + plot_h - plot_h * tick / scale_top
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#dddddd" stroke-width="1"/>'
            f'<text x="{LEFT - 8}" y="{y + 6:.1f}" text-anchor="end" font-size="16" '
            f'fill="#333333">{tick}</text>'
        )
    for hour in range(24):
        x0 = LEFT + slot * hour + slot * 0.1
        for i, (line, counts) in enumerate(hours.items()):
            n = counts[hour]
            if not n:
                continue
            h = plot_h * n / scale_top
            label = f"{hour}时 {names.get(line, line)}：{n}通"
            out.append(
                f'<rect class="bar bar-{escape(line)}" x="{x0 + i * bar_w:.1f}" '
                f'y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS.get(line, OTHER_COLOUR)}"><title>{escape(label)}</title></rect>'
            )
        if hour % 2 == 0:
            out.append(
                f'<text x="{LEFT + slot * (hour + 0.5):.1f}" y="{TOP + plot_h + 22}" '
                f'text-anchor="middle" font-size="16" fill="#333333">{hour}</text>'
            )
    out.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        'stroke="#333333" stroke-width="2"/>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
        'font-size="16" fill="#333333">时（北京时间）</text>'
        f'<text x="{LEFT}" y="{TOP - 30}" font-size="16" fill="#333333">来电数（通）</text>'
    )
    x = LEFT + 140
    for line in hours:
        name = names.get(line, line)
        out.append(
            f'<rect x="{x}" y="{TOP - 46}" width="18" height="18" '
            f'fill="{COLOURS.get(line, OTHER_COLOUR)}"/>'
            f'<text x="{x + 24}" y="{TOP - 31}" font-size="18" fill="#222222">{escape(name)}</text>'
        )
        x += 48 + 18 * len(name)
    out.append("</svg>")
    return Markup("".join(out))
