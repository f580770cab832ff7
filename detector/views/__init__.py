"""Pages: accounts, submissions, private media downloads (media), the health probe (health) and
/favicon.ico (site). The JSON API is in detector.api."""
