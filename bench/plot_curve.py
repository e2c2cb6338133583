#!/usr/bin/env python3
"""Draws bench/run's latency curve as an SVG: p50, p99 and p99.9 (histogram bucket bounds, ms)
against the offered load, both on log scales, with the 50 ms target.

    plot_curve.py '<latency_curve JSON list>' OUT.svg RUN
"""
import json
import math
import sys

points = json.loads(sys.argv[1])
out, run = sys.argv[2], sys.argv[3]
W, H, L, R, T, B = 640, 400, 70, 20, 40, 50  # size and margins
x_lo, x_hi = 500, 50000
y_lo, y_hi = 1, 100000


def x(v):
    return L + (W - L - R) * (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))


def y(v):
    v = min(max(v, y_lo), y_hi)
    return H - B - (H - T - B) * (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))


svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="20" font-size="13">Kafka append to commit, one warm replica ({run})</text>']
for v in (1000, 2000, 5000, 10000, 20000, 40000):
    svg.append(f'<line x1="{x(v):.1f}" y1="{T}" x2="{x(v):.1f}" y2="{H - B}" stroke="#eee"/>')
    svg.append(f'<text x="{x(v):.1f}" y="{H - B + 15}" text-anchor="middle">{v // 1000}k</text>')
for v in (1, 10, 100, 1000, 10000, 100000):
    svg.append(f'<line x1="{L}" y1="{y(v):.1f}" x2="{W - R}" y2="{y(v):.1f}" stroke="#eee"/>')
    svg.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g} ms</text>')
svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">offered events/s (log)</text>')
svg.append(f'<line x1="{L}" y1="{y(50):.1f}" x2="{W - R}" y2="{y(50):.1f}" stroke="#c00" stroke-dasharray="4 3"/>')
svg.append(f'<text x="{W - R - 4}" y="{y(50) - 4:.1f}" text-anchor="end" fill="#c00">target p99 50 ms</text>')
for key, colour in (("p50_ms", "#2a7"), ("p99_ms", "#27c"), ("p999_ms", "#a3a")):
    xy = [(x(p["offered_per_s"]), y(p[key])) for p in points]
    if xy:
        svg.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                   % (colour, " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)))
        svg.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>' for a, b in xy)
for i, (label, colour) in enumerate((("p50", "#2a7"), ("p99", "#27c"), ("p99.9", "#a3a"))):
    svg.append(f'<text x="{L + 10 + 60 * i}" y="{T + 14}" fill="{colour}">{label}</text>')
svg.append("</svg>")
with open(out, "w") as f:
    f.write("\n".join(svg) + "\n")
