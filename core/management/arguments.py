"""Argument types shared by the management commands."""


def positive(cast):
    """An argparse type: ``cast`` (int, float) of the text, refused unless above zero
    (argparse then says "invalid <cast> value" and exits with its usage)."""

    def parse(text):
        value = cast(text)
        if value <= 0:
            raise ValueError(text)
        return value

    parse.__name__ = cast.__name__
    return parse
