"""The csu app has no models of its own.

This module only makes Django send the app ``post_migrate``, last of all the apps
(INSTALLED_APPS), once every app's permissions exist: ``csu/apps.py`` gives the role
groups their permissions then.
"""
