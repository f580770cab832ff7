"""Analyse a link: fetch a post's or a video's media safely, then hand it to the upload path.

`addresses` (which hosts may be reached), `client` (the one HTTP client, pinned to the checked
address), `extract` (yt-dlp, its network access through `client`), `errors` (one message per
failure), `jobs` (the fetch job on its own queue) and `submit` (a link becomes a submission).
"""
