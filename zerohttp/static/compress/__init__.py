"""Compression done once: a qualifying file is compressed in a worker thread, the result kept
in a private cache directory, and served from there with sendfile like any file.

``policy`` decides which files qualify, ``codecs`` holds the coders and their levels,
``store`` the bounded on-disk (or in-memory) cache, ``jobs`` the thread pool that fills it.
"""
