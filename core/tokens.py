"""Comparing a secret someone sent with the one expected."""

import hmac


def same_secret(given: str, expected: str) -> bool:
    """Whether ``given`` is ``expected``, in constant time. As bytes: ``hmac.compare_digest``
    raises on a str with non-ASCII characters, and a header may hold anything."""
    return hmac.compare_digest(given.encode(), expected.encode())
