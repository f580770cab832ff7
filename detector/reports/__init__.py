"""Signed reports of an analysis: the content (content.py), its signature (signing.py), the PDF (pdf.py).

`build.py` puts them together for the views and commands.
"""
