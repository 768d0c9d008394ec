"""Colours for reading: WCAG 2 relative luminance and contrast ratio, and the text colour
(black or white) that reads best on a background. Every coloured badge uses these."""

BLACK, WHITE = "#000000", "#FFFFFF"


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``, 0 (black) to 1 (white)."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two colours, 1 to 21 (4.5 is the minimum for text)."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def readable_text(background: str) -> str:
    """Black or white, whichever contrasts more with ``background``."""
    return max((BLACK, WHITE), key=lambda text: contrast_ratio(text, background))
