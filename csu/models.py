"""CSU wires the apps; it has no models of its own (post_migrate needs this module)."""
