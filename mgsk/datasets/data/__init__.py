"""The CSV files of :mod:`mgsk.datasets` (package data; a package so that setuptools ships it)."""
