"""Pages: accounts, submissions, private media downloads (media) and the health probe (health).
The JSON API is in detector.api."""
