"""Pages: accounts (accounts.py) and submissions (submissions.py). Media downloads live in
detector.media_views, the JSON API in detector.api, the health probe in detector.views_health."""
